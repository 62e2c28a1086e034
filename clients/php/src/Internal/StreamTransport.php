<?php
// HTTP through PHP's own http:// stream wrapper (fopen with a stream context),
// for hosts without the curl extension. One connection per request. Not for
// anything else.

declare(strict_types=1);

namespace Cometbox\Internal;

use Cometbox\Exception;

/** @internal */
final class StreamTransport implements Transport
{
    public function name(): string
    {
        return 'stream';
    }

    public function request(string $method, string $url, array $headers, string $body, float $timeout): array
    {
        $deadline = \microtime(true) + $timeout;
        $headers[] = 'Connection: close';
        $context = \stream_context_create([
            'http' => [
                'method' => $method,
                'header' => \implode("\r\n", $headers),
                'content' => $body,
                // Applies to connecting and to each read of the status and headers.
                'timeout' => $timeout,
                'ignore_errors' => true,
                'follow_location' => 0,
                'protocol_version' => 1.1,
            ],
        ]);
        $warning = '';
        \set_error_handler(static function (int $no, string $text) use (&$warning): bool {
            $warning = $text;
            return true;
        });
        try {
            $fp = \fopen($url, 'rb', false, $context);
        } finally {
            \restore_error_handler();
        }
        if ($fp === false) {
            $why = \preg_replace('/^fopen\([^)]*\): (Failed to open stream: )?/i', '', $warning);
            if (\microtime(true) >= $deadline - 0.05 * $timeout || \stripos($warning, 'timed out') !== false) {
                throw new Exception(
                    \sprintf('cometbox: no answer from %s within %g s', $url, $timeout),
                    0,
                    Exception::TIMEOUT,
                    \sprintf('no answer within %g s', $timeout)
                );
            }
            throw new Exception('cometbox: cannot reach ' . $url . ': ' . $why, 0, Exception::CONNECTION_FAILED, $why);
        }
        try {
            $meta = \stream_get_meta_data($fp);
            $status = 0;
            foreach ($meta['wrapper_data'] ?? [] as $line) {
                if (\preg_match('#^HTTP/\d(?:\.\d)? (\d{3})(?: |$)#', (string) $line, $m) === 1) {
                    $status = (int) $m[1];
                }
            }
            if ($status === 0) {
                throw new Exception(
                    'cometbox: answer from ' . $url . ' has no HTTP status line',
                    0,
                    Exception::BAD_RESPONSE,
                    'no HTTP status line'
                );
            }
            $answer = '';
            while (!\feof($fp)) {
                $left = $deadline - \microtime(true);
                if ($left <= 0) {
                    throw $this->timeout($url, $timeout);
                }
                \stream_set_timeout($fp, (int) $left, (int) (($left - (int) $left) * 1e6));
                $chunk = \fread($fp, 65536);
                if (\stream_get_meta_data($fp)['timed_out']) {
                    throw $this->timeout($url, $timeout);
                }
                if ($chunk === false) {
                    throw new Exception('cometbox: reading the answer from ' . $url . ' failed', 0,
                        Exception::CONNECTION_FAILED, 'read failed');
                }
                $answer .= $chunk;
                if (\strlen($answer) > Transport::MAX_ANSWER_BYTES) {
                    throw new Exception(
                        'cometbox: answer from ' . $url . ' is larger than ' . Transport::MAX_ANSWER_BYTES . ' bytes',
                        0,
                        Exception::BAD_RESPONSE,
                        'answer larger than ' . Transport::MAX_ANSWER_BYTES . ' bytes'
                    );
                }
            }
            return [$status, $answer];
        } finally {
            \fclose($fp);
        }
    }

    public function close(): void
    {
    }

    private function timeout(string $url, float $timeout): Exception
    {
        return new Exception(
            \sprintf('cometbox: no answer from %s within %g s', $url, $timeout),
            0,
            Exception::TIMEOUT,
            \sprintf('no answer within %g s', $timeout)
        );
    }
}
