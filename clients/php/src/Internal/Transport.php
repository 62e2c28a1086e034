<?php
// One HTTP request to the daemon and its raw answer. Not for interpreting the
// answer: Client turns statuses and bodies into ids or exceptions.

declare(strict_types=1);

namespace Cometbox\Internal;

use Cometbox\Exception;

/** @internal */
interface Transport
{
    /** Largest answer body a transport accepts (ids of a 10000-message batch fit easily). */
    public const MAX_ANSWER_BYTES = 4 * 1024 * 1024;

    /** "curl" or "stream". */
    public function name(): string;

    /**
     * Sends one request and waits at most $timeout seconds in all for the
     * whole answer.
     *
     * @param list<string> $headers "Name: value" lines
     * @return array{0:int,1:string} HTTP status and body
     * @throws Exception connection_failed, timeout or bad_response
     */
    public function request(string $method, string $url, array $headers, string $body, float $timeout): array;

    /** Drops any kept-alive connection. */
    public function close(): void;
}
