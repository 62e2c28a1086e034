<?php
// Checks what a caller wants to publish and turns it into the XML batch of
// docs/PROTOCOL.md ("POST /publish"). Not for talking to the daemon: see Client.
//
// The texts of the exceptions thrown here are mirrored word for word by the C
// extension (clients/php-ext/cometbox_encode.c); change both together.

declare(strict_types=1);

namespace Cometbox\Internal;

use Cometbox\Exception;

/** @internal */
final class Encoder
{
    /** A batch holds 1 to this many messages (PROTOCOL.md). */
    public const MAX_BATCH = 10000;

    /** json_encode() flags; the extension uses the same ones. Output is pure ASCII. */
    public const JSON_FLAGS = \JSON_UNESCAPED_SLASHES | \JSON_PRESERVE_ZERO_FRACTION;

    private const QUEUE_RULE = 'a queue name is 1 to 128 ASCII letters, digits and . _ : @ -';

    /**
     * Throws unless $queue is a valid queue name. $where prefixes the message
     * ("" for a single publish, "message 3: " inside a batch).
     */
    public static function checkQueue(string $queue, string $where = ''): void
    {
        if (\preg_match('/^[A-Za-z0-9._:@-]{1,128}$/D', $queue) !== 1) {
            throw self::invalid(\sprintf(
                '%sinvalid queue name %s: %s',
                $where,
                self::quote($queue),
                self::QUEUE_RULE
            ));
        }
    }

    /**
     * Throws unless $data is valid UTF-8 without characters that XML 1.0
     * cannot carry (C0 controls other than tab, LF, CR; U+FFFE; U+FFFF).
     */
    public static function checkText(string $data, string $where = ''): void
    {
        if (\preg_match('//u', $data) !== 1) {
            throw self::invalid(\sprintf(
                '%sdata is not valid UTF-8 (first bad byte at offset %d)',
                $where,
                self::firstBadUtf8($data)
            ));
        }
        if (\preg_match('/[\x00-\x08\x0B\x0C\x0E-\x1F\x{FFFE}\x{FFFF}]/u', $data, $m, \PREG_OFFSET_CAPTURE) === 1) {
            $cp = self::codePoint($m[0][0]);
            throw self::invalid(\sprintf(
                '%sdata contains U+%04X at byte offset %d, which XML cannot carry; '
                . 'publish it as JSON instead',
                $where,
                $cp,
                $m[0][1]
            ));
        }
    }

    /** json_encode() of $value; throws Exception (invalid_argument) when it cannot. */
    public static function encodeJson($value, string $where = ''): string
    {
        try {
            return \json_encode($value, self::JSON_FLAGS | \JSON_THROW_ON_ERROR);
        } catch (\JsonException $e) {
            throw new Exception(
                'cometbox: ' . $where . 'cannot encode data as JSON: ' . $e->getMessage(),
                0,
                Exception::INVALID_ARGUMENT,
                $where . 'cannot encode data as JSON: ' . $e->getMessage(),
                $e
            );
        }
    }

    /** Escapes text for the content of an XML element; CR survives as &#13;. */
    public static function escape(string $text): string
    {
        return \strtr($text, ['&' => '&amp;', '<' => '&lt;', '>' => '&gt;', "\r" => '&#13;']);
    }

    /**
     * One <message> element. $queue and $text must have passed checkQueue()
     * and, for text, checkText(); JSON text from encodeJson() is ASCII.
     */
    public static function element(string $queue, string $text, bool $json): string
    {
        return '<message queue="' . $queue . '"' . ($json ? ' type="json"' : '') . '>'
            . self::escape($text) . '</message>';
    }

    /** Wraps elements into the batch document. */
    public static function document(string $elements): string
    {
        return '<messages>' . $elements . '</messages>';
    }

    /**
     * Checks a publishMany() argument and returns the XML batch.
     *
     * Each message is an array: 'queue' (string), 'data' (string, or any
     * JSON-encodable value when 'json' is true) and optionally 'json' (bool,
     * default false). Nothing else is accepted.
     *
     * @param array<mixed> $messages
     * @return array{0:string,1:int} the document and the number of messages
     */
    public static function batch(array $messages): array
    {
        $n = \count($messages);
        if ($n === 0) {
            throw self::invalid('a batch needs at least one message');
        }
        if ($n > self::MAX_BATCH) {
            throw self::invalid(\sprintf('a batch holds at most %d messages, got %d', self::MAX_BATCH, $n));
        }
        $out = '';
        $i = 1; // positions count from 1, as the daemon's errors do
        foreach ($messages as $message) {
            [$queue, $text, $json] = self::normalize($message, $i);
            $out .= self::element($queue, $text, $json);
            $i++;
        }
        return [self::document($out), $n];
    }

    /**
     * Checks one batch entry; $i is its position, counted from 1 (errors say
     * "message $i: ...", as the daemon's do).
     *
     * @param mixed $message
     * @return array{0:string,1:string,2:bool} queue, text to put in XML, json flag
     */
    public static function normalize($message, int $i): array
    {
        $where = 'message ' . $i . ': ';
        if (!\is_array($message)) {
            throw self::invalid($where . 'expected an array with "queue" and "data", got ' . \get_debug_type($message));
        }
        foreach ($message as $key => $unused) {
            if ($key !== 'queue' && $key !== 'data' && $key !== 'json') {
                throw self::invalid($where . 'unknown key ' . self::quote((string) $key)
                    . ' (allowed: "queue", "data", "json")');
            }
        }
        if (!\array_key_exists('queue', $message)) {
            throw self::invalid($where . 'missing "queue"');
        }
        if (!\array_key_exists('data', $message)) {
            throw self::invalid($where . 'missing "data"');
        }
        $json = $message['json'] ?? false;
        if (!\is_bool($json)) {
            throw self::invalid($where . '"json" must be a bool, got ' . \get_debug_type($json));
        }
        $queue = $message['queue'];
        if (!\is_string($queue)) {
            throw self::invalid($where . '"queue" must be a string, got ' . \get_debug_type($queue));
        }
        self::checkQueue($queue, $where);
        if ($json) {
            return [$queue, self::encodeJson($message['data'], $where), true];
        }
        $data = $message['data'];
        if (!\is_string($data)) {
            throw self::invalid($where . '"data" must be a string unless "json" is true, got '
                . \get_debug_type($data));
        }
        self::checkText($data, $where);
        return [$queue, $data, false];
    }

    /** An invalid_argument exception whose message is "cometbox: $detail". */
    public static function invalid(string $detail): Exception
    {
        return new Exception('cometbox: ' . $detail, 0, Exception::INVALID_ARGUMENT, $detail);
    }

    /**
     * Quotes a caller's string for an error message: printable ASCII as is,
     * '"' and '\' and every other byte as \xNN, at most 64 bytes shown.
     */
    public static function quote(string $s): string
    {
        $shown = \substr($s, 0, 64);
        $out = '"';
        $len = \strlen($shown);
        for ($i = 0; $i < $len; $i++) {
            $c = \ord($shown[$i]);
            $out .= ($c >= 0x20 && $c < 0x7F && $c !== 0x22 && $c !== 0x5C)
                ? $shown[$i] : \sprintf('\\x%02X', $c);
        }
        return $out . '"' . (\strlen($s) > 64 ? '...' : '');
    }

    /** Code point of one valid UTF-8 character, without needing mbstring. */
    private static function codePoint(string $ch): int
    {
        $b = \array_values(\unpack('C*', $ch));
        switch (\count($b)) {
            case 1:
                return $b[0];
            case 2:
                return (($b[0] & 0x1F) << 6) | ($b[1] & 0x3F);
            case 3:
                return (($b[0] & 0x0F) << 12) | (($b[1] & 0x3F) << 6) | ($b[2] & 0x3F);
            default:
                return (($b[0] & 0x07) << 18) | (($b[1] & 0x3F) << 12) | (($b[2] & 0x3F) << 6) | ($b[3] & 0x3F);
        }
    }

    /** Offset of the first byte that does not start or continue valid UTF-8. */
    private static function firstBadUtf8(string $s): int
    {
        $len = \strlen($s);
        $i = 0;
        while ($i < $len) {
            $c = \ord($s[$i]);
            if ($c < 0x80) {
                $i++;
                continue;
            }
            if ($c >= 0xC2 && $c <= 0xDF) {
                $n = 1;
                $lo = 0x80;
                $hi = 0xBF;
            } elseif ($c >= 0xE0 && $c <= 0xEF) {
                $n = 2;
                $lo = $c === 0xE0 ? 0xA0 : 0x80;
                $hi = $c === 0xED ? 0x9F : 0xBF;
            } elseif ($c >= 0xF0 && $c <= 0xF4) {
                $n = 3;
                $lo = $c === 0xF0 ? 0x90 : 0x80;
                $hi = $c === 0xF4 ? 0x8F : 0xBF;
            } else {
                return $i;
            }
            for ($k = 1; $k <= $n; $k++) {
                if ($i + $k >= $len) {
                    return $i;
                }
                $d = \ord($s[$i + $k]);
                if ($k === 1 ? ($d < $lo || $d > $hi) : ($d < 0x80 || $d > 0xBF)) {
                    return $i;
                }
            }
            $i += $n + 1;
        }
        return $len;
    }
}

