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
            // wrapper_data holds the head of each answer read (interim ones
            // too): the last status line and the headers after it count.
            $status = 0;
            $length = null;
            $chunked = false;
            foreach ($meta['wrapper_data'] ?? [] as $line) {
                $line = (string) $line;
                if (\preg_match('#^HTTP/\d(?:\.\d)? (\d{3})(?: |$)#', $line, $m) === 1) {
                    $status = (int) $m[1];
                    $length = null;
                    $chunked = false;
                } elseif (\preg_match('/^Content-Length:[ \t]*(\d{1,12})[ \t]*$/i', $line, $m) === 1) {
                    $length = (int) $m[1];
                } elseif (\preg_match('/^Transfer-Encoding:.*chunked[ \t]*$/i', $line) === 1) {
                    $chunked = true;
                }
            }
            if ($chunked) {
                $length = null; // the wrapper decodes chunks itself
            }
            if ($status === 0) {
                throw new Exception(
                    'cometbox: unexpected answer from ' . $url . ': no HTTP status line',
                    0,
                    Exception::BAD_RESPONSE,
                    'no HTTP status line'
                );
            }
            if ($length !== null && $length > Transport::MAX_ANSWER_BYTES) {
                throw $this->tooLarge($url);
            }
            // PHP's wrapper reads to the end of the connection; Content-Length,
            // when given, ends the answer sooner.
            $answer = '';
            while (!\feof($fp) && ($length === null || \strlen($answer) < $length)) {
                $left = $deadline - \microtime(true);
                if ($left <= 0) {
                    throw $this->timeout($url, $timeout);
                }
                \stream_set_timeout($fp, (int) $left, (int) (($left - (int) $left) * 1e6));
                $chunk = \fread($fp, $length === null ? 65536 : \max(1, \min(65536, $length - \strlen($answer))));
                if (\stream_get_meta_data($fp)['timed_out']) {
                    throw $this->timeout($url, $timeout);
                }
                if ($chunk === false) {
                    throw new Exception('cometbox: reading the answer from ' . $url . ' failed', 0,
                        Exception::CONNECTION_FAILED, 'read failed');
                }
                $answer .= $chunk;
                if (\strlen($answer) > Transport::MAX_ANSWER_BYTES) {
                    throw $this->tooLarge($url);
                }
            }
            if ($length !== null && \strlen($answer) < $length) {
                throw new Exception(
                    'cometbox: cannot reach ' . $url . ': the connection closed before the answer was complete',
                    0,
                    Exception::CONNECTION_FAILED,
                    'the connection closed before the answer was complete'
                );
            }
            return [$status, $answer];
        } finally {
            \fclose($fp);
        }
    }

    public function close(): void
    {
    }

    private function tooLarge(string $url): Exception
    {
        return new Exception(
            'cometbox: answer from ' . $url . ' is larger than ' . Transport::MAX_ANSWER_BYTES . ' bytes',
            0,
            Exception::BAD_RESPONSE,
            'answer larger than ' . Transport::MAX_ANSWER_BYTES . ' bytes'
        );
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
