<?php
// Subscriber tokens (docs/SECURITY.md, "Subscribers: subscribe-auth = token"):
// checks the arguments and signs EXPIRY.QUEUES with HMAC-SHA256. Not for
// sending anything; a token is made locally and handed to a browser.
//
// The texts of the exceptions thrown here are mirrored word for word by the C
// extension (clients/php-ext/cometbox_token.c); change both together.

declare(strict_types=1);

namespace Cometbox\Internal;

/** @internal */
final class Token
{
    /** A token covers 1 to this many queues (the daemon's limit of a queue list). */
    public const MAX_QUEUES = 16;

    /** A subscribe-secret shorter than this is refused (cometboxd refuses it too). */
    public const MIN_SECRET_BYTES = 16;

    /** Longest lifetime: 366 days, as `cometboxd --make-token` allows. */
    public const MAX_TTL = 31622400;

    /**
     * Checks the arguments and returns EXPIRY "." QUEUES "." SIGNATURE with
     * EXPIRY = $now + $ttl.
     *
     * @param array<mixed> $queues queue names; keys ignored, order kept
     * @throws \Cometbox\Exception invalid_argument
     */
    public static function make(?string $secret, array $queues, int $ttl, int $now): string
    {
        if ($secret === null || $secret === '') {
            throw Encoder::invalid('a token needs a subscribe secret (option "subscribe_secret", '
                . 'or ini cometbox.subscribe_secret for the extension)');
        }
        if (\strlen($secret) < self::MIN_SECRET_BYTES) {
            throw Encoder::invalid(\sprintf(
                'the subscribe secret must be at least %d bytes, got %d',
                self::MIN_SECRET_BYTES,
                \strlen($secret)
            ));
        }
        if (\strpos($secret, "\0") !== false) {
            throw Encoder::invalid('the subscribe secret must not contain NUL bytes');
        }
        $n = \count($queues);
        if ($n === 0 || $n > self::MAX_QUEUES) {
            throw Encoder::invalid(\sprintf('a token covers 1 to %d queues, got %d', self::MAX_QUEUES, $n));
        }
        $names = [];
        $i = 1; // positions count from 1, as in publish errors
        foreach ($queues as $queue) {
            $where = 'queue ' . $i . ': ';
            if (!\is_string($queue)) {
                throw Encoder::invalid($where . 'expected a string, got ' . \get_debug_type($queue));
            }
            Encoder::checkQueue($queue, $where);
            if (\in_array($queue, $names, true)) {
                throw Encoder::invalid($where . 'duplicate queue name ' . Encoder::quote($queue));
            }
            $names[] = $queue;
            $i++;
        }
        if ($ttl < 1 || $ttl > self::MAX_TTL) {
            throw Encoder::invalid(\sprintf('ttl must be 1 to %d seconds, got %d', self::MAX_TTL, $ttl));
        }
        $expiry = (string) ($now + $ttl);
        $list = \implode(',', $names);
        $mac = \hash_hmac('sha256', 'cometbox1:' . $expiry . ':' . $list, $secret, true);
        return $expiry . '.' . $list . '.' . \rtrim(\strtr(\base64_encode($mac), '+/', '-_'), '=');
    }
}
