<?php
// HTTP through the curl extension, reusing one handle so that libcurl keeps the
// connection to the daemon alive between publishes. Not for anything else.

declare(strict_types=1);

namespace Cometbox\Internal;

use Cometbox\Exception;

/** @internal */
final class CurlTransport implements Transport
{
    /** @var \CurlHandle|null owned; reused for keep-alive, closed by close() */
    private $handle = null;

    public function name(): string
    {
        return 'curl';
    }

    public function request(string $method, string $url, array $headers, string $body, float $timeout): array
    {
        if ($this->handle === null) {
            $handle = \curl_init();
            if ($handle === false) {
                throw new Exception('cometbox: curl_init() failed', 0, Exception::CONNECTION_FAILED, 'curl_init() failed');
            }
            $this->handle = $handle;
        }
        $answer = '';
        $tooLarge = false;
        $ms = (int) \ceil($timeout * 1000);
        \curl_setopt_array($this->handle, [
            \CURLOPT_URL => $url,
            \CURLOPT_CUSTOMREQUEST => $method,
            \CURLOPT_POSTFIELDS => $body,
            // An empty "Expect:" stops libcurl from waiting for 100-continue on large bodies.
            \CURLOPT_HTTPHEADER => \array_merge($headers, ['Expect:']),
            \CURLOPT_HEADER => false,
            \CURLOPT_RETURNTRANSFER => false,
            \CURLOPT_WRITEFUNCTION => static function ($h, string $chunk) use (&$answer, &$tooLarge): int {
                if (\strlen($answer) + \strlen($chunk) > Transport::MAX_ANSWER_BYTES) {
                    $tooLarge = true;
                    return 0;
                }
                $answer .= $chunk;
                return \strlen($chunk);
            },
            \CURLOPT_TIMEOUT_MS => $ms,
            \CURLOPT_CONNECTTIMEOUT_MS => $ms,
            \CURLOPT_NOSIGNAL => true,
            \CURLOPT_FOLLOWLOCATION => false,
            // The publish port is the application's own daemon: never go through
            // an http_proxy from the environment.
            \CURLOPT_PROXY => '',
            \CURLOPT_PROTOCOLS => \CURLPROTO_HTTP | \CURLPROTO_HTTPS,
            \CURLOPT_HTTP_VERSION => \CURL_HTTP_VERSION_1_1,
        ]);
        $ok = \curl_exec($this->handle);
        if ($ok === false) {
            $errno = \curl_errno($this->handle);
            $error = \curl_error($this->handle);
            if ($tooLarge) {
                throw new Exception(
                    'cometbox: answer from ' . $url . ' is larger than ' . Transport::MAX_ANSWER_BYTES . ' bytes',
                    0,
                    Exception::BAD_RESPONSE,
                    'answer larger than ' . Transport::MAX_ANSWER_BYTES . ' bytes'
                );
            }
            if ($errno === \CURLE_OPERATION_TIMEDOUT) {
                throw new Exception(
                    \sprintf('cometbox: no answer from %s within %g s', $url, $timeout),
                    0,
                    Exception::TIMEOUT,
                    \sprintf('no answer within %g s', $timeout)
                );
            }
            throw new Exception(
                'cometbox: cannot reach ' . $url . ': ' . $error,
                0,
                Exception::CONNECTION_FAILED,
                $error
            );
        }
        return [(int) \curl_getinfo($this->handle, \CURLINFO_RESPONSE_CODE), $answer];
    }

    public function close(): void
    {
        if ($this->handle !== null) {
            \curl_close($this->handle);
            $this->handle = null;
        }
    }
}
