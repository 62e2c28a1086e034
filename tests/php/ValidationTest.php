<?php
// What the client refuses before sending anything: bad queue names, text XML
// cannot carry, malformed batches, values json_encode() refuses, bad options.
// The client points at a port nobody listens on, so a check that let the call
// through would show up as connection_failed instead of invalid_argument.

declare(strict_types=1);

namespace Cometbox\Tests;

use Cometbox\Client;
use Cometbox\Exception;

final class ValidationTest extends TestCase
{
    private const RULE = 'a queue name is 1 to 128 ASCII letters, digits and . _ : @ -';

    /** @var string a URL where nothing listens */
    private static $deadUrl;

    public static function setUpBeforeClass(): void
    {
        $s = \stream_socket_server('tcp://127.0.0.1:0');
        self::$deadUrl = 'http://' . \stream_socket_get_name($s, false);
        \fclose($s);
    }

    private function client(string $transport): Client
    {
        return new Client(self::$deadUrl, ['transport' => $transport, 'timeout' => 2]);
    }

    private function assertInvalid(callable $fn, string $detail): void
    {
        $this->assertThrowsCometbox($fn, 0, 'invalid_argument', $detail, 'cometbox: ' . $detail);
    }

    /** @return array<string,array{string,string,string}> */
    public function badQueues(): array
    {
        $names = [
            'empty' => ['', '""'],
            'too long' => [\str_repeat('q', 129), '"' . \str_repeat('q', 64) . '"...'],
            'space' => ['a b', '"a b"'],
            'slash' => ['a/b', '"a/b"'],
            'comma' => ['a,b', '"a,b"'],
            'quote' => ['a"b', '"a\x22b"'],
            'NUL' => ["a\0b", '"a\x00b"'],
            'newline' => ["a\n", '"a\x0A"'],
            'non-ASCII' => ["caf\u{E9}", '"caf\xC3\xA9"'],
        ];
        $out = [];
        foreach ($this->transports() as $t => [$transport]) {
            foreach ($names as $n => [$queue, $shown]) {
                $out["$t $n"] = [$transport, $queue, $shown];
            }
        }
        return $out;
    }

    /** @dataProvider badQueues */
    public function testBadQueueNames(string $transport, string $queue, string $shown): void
    {
        $c = $this->client($transport);
        $detail = "invalid queue name $shown: " . self::RULE;
        $this->assertInvalid(function () use ($c, $queue) {
            $c->publish($queue, 'x');
        }, $detail);
        $this->assertInvalid(function () use ($c, $queue) {
            $c->publishJson($queue, 1);
        }, $detail);
        $this->assertInvalid(function () use ($c, $queue) {
            $c->publishMany([['queue' => 'ok', 'data' => 'x'], ['queue' => $queue, 'data' => 'x']]);
        }, "message 2: $detail");
    }

    /** @return array<string,array{string,string,string}> */
    public function badTexts(): array
    {
        $texts = [
            'lone continuation' => ["ab\x80", 'data is not valid UTF-8 (first bad byte at offset 2)'],
            'cut sequence' => ["ab\xC3", 'data is not valid UTF-8 (first bad byte at offset 2)'],
            'overlong' => ["\xC0\xAF", 'data is not valid UTF-8 (first bad byte at offset 0)'],
            'overlong 3-byte' => ["x\xE0\x80\xAF", 'data is not valid UTF-8 (first bad byte at offset 1)'],
            'surrogate' => ["ok \xED\xA0\x80", 'data is not valid UTF-8 (first bad byte at offset 3)'],
            'above U+10FFFF' => ["\xF4\x90\x80\x80", 'data is not valid UTF-8 (first bad byte at offset 0)'],
            'FF byte' => ["\u{E9}\xFF", 'data is not valid UTF-8 (first bad byte at offset 2)'],
            'invalid after a control' => ["\x01\xFF", 'data is not valid UTF-8 (first bad byte at offset 1)'],
            'NUL' => ["a\0", 'data contains U+0000 at byte offset 1, which XML cannot carry; publish it as JSON instead'],
            'backspace' => ["\x08", 'data contains U+0008 at byte offset 0, which XML cannot carry; publish it as JSON instead'],
            'vertical tab' => ["\t\n\r\x0B", 'data contains U+000B at byte offset 3, which XML cannot carry; publish it as JSON instead'],
            'form feed' => ["\u{E9}\x0C", 'data contains U+000C at byte offset 2, which XML cannot carry; publish it as JSON instead'],
            'unit separator' => ["\x1F", 'data contains U+001F at byte offset 0, which XML cannot carry; publish it as JSON instead'],
            'escape' => ["\x1B[31m", 'data contains U+001B at byte offset 0, which XML cannot carry; publish it as JSON instead'],
            'U+FFFE' => ["x\u{FFFE}", 'data contains U+FFFE at byte offset 1, which XML cannot carry; publish it as JSON instead'],
            'U+FFFF' => ["\u{FFFF}", 'data contains U+FFFF at byte offset 0, which XML cannot carry; publish it as JSON instead'],
        ];
        $out = [];
        foreach ($this->transports() as $t => [$transport]) {
            foreach ($texts as $n => [$text, $detail]) {
                $out["$t $n"] = [$transport, $text, $detail];
            }
        }
        return $out;
    }

    /** @dataProvider badTexts */
    public function testTextXmlCannotCarry(string $transport, string $text, string $detail): void
    {
        $c = $this->client($transport);
        $this->assertInvalid(function () use ($c, $text) {
            $c->publish('alice', $text);
        }, $detail);
        $this->assertInvalid(function () use ($c, $text) {
            $c->publishMany([['queue' => 'a', 'data' => 'fine'], ['queue' => 'b', 'data' => 'x'], ['queue' => 'c', 'data' => $text]]);
        }, 'message 3: ' . $detail);
    }

    /** @dataProvider transports */
    public function testAllowedTextGetsPastTheChecks(string $transport): void
    {
        // Tab, LF, CR, U+007F..U+009F, U+FFFD and U+10FFFF are XML characters:
        // the call gets as far as connecting (and fails there).
        $c = $this->client($transport);
        $this->assertThrowsCometbox(function () use ($c) {
            $c->publish(\str_repeat('q', 128), "\t\n\r\u{7F}\u{9F}\u{FFFD}\u{10FFFF}");
        }, 0, 'connection_failed', null, null);
    }

    /** @return array<string,array{string,mixed,string}> */
    public function badJson(): array
    {
        $deep = [];
        for ($i = 0; $i < 600; $i++) {
            $deep = [$deep];
        }
        $values = [
            'NAN' => [\NAN, 'Inf and NaN cannot be JSON encoded'],
            'INF inside' => [['a' => [1, \INF]], 'Inf and NaN cannot be JSON encoded'],
            'bad UTF-8' => [['k' => "\xFF"], 'Malformed UTF-8 characters, possibly incorrectly encoded'],
            'resource' => [\STDIN, 'Type is not supported'],
            'too deep' => [$deep, 'Maximum stack depth exceeded'],
        ];
        $out = [];
        foreach ($this->transports() as $t => [$transport]) {
            foreach ($values as $n => [$value, $why]) {
                $out["$t $n"] = [$transport, $value, $why];
            }
        }
        return $out;
    }

    /**
     * @dataProvider badJson
     * @param mixed $value
     */
    public function testValuesJsonCannotEncode(string $transport, $value, string $why): void
    {
        $c = $this->client($transport);
        $e = $this->assertThrowsCometbox(function () use ($c, $value) {
            $c->publishJson('alice', $value);
        }, 0, 'invalid_argument', "cannot encode data as JSON: $why", "cometbox: cannot encode data as JSON: $why");
        if ($transport !== 'ext') {
            // The extension encodes in C: there is no JsonException to chain.
            $this->assertInstanceOf(\JsonException::class, $e->getPrevious());
        }
        $this->assertInvalid(function () use ($c, $value) {
            $c->publishMany([['queue' => 'a', 'data' => $value, 'json' => true]]);
        }, "message 1: cannot encode data as JSON: $why");
    }

    /** @dataProvider transports */
    public function testJsonSerializableIsCalledOnce(string $transport): void
    {
        $c = $this->client($transport);
        $value = new class implements \JsonSerializable {
            public $calls = 0;

            public function jsonSerialize(): mixed
            {
                $this->calls++;
                return "\x01"; // encodes fine; the dead URL then fails the publish
            }
        };
        $this->assertThrowsCometbox(function () use ($c, $value) {
            $c->publishJson('alice', $value);
        }, 0, 'connection_failed', null, null);
        $this->assertSame(1, $value->calls);
        $this->assertThrowsCometbox(function () use ($c, $value) {
            $c->publishMany([['queue' => 'a', 'data' => $value, 'json' => true]]);
        }, 0, 'connection_failed', null, null);
        $this->assertSame(2, $value->calls);
    }

    /** @dataProvider transports */
    public function testJsonSerializableExceptionsPassThrough(string $transport): void
    {
        $c = $this->client($transport);
        $value = new class implements \JsonSerializable {
            public function jsonSerialize(): mixed
            {
                throw new \DomainException('from jsonSerialize');
            }
        };
        try {
            $c->publishJson('alice', $value);
            $this->fail('nothing thrown');
        } catch (\DomainException $e) {
            $this->assertSame('from jsonSerialize', $e->getMessage());
        }
    }

    /** @return array<string,array{string,array,string}> */
    public function badBatches(): array
    {
        $batches = [
            'empty' => [[], 'a batch needs at least one message'],
            'too many' => [\array_fill(0, 10001, ['queue' => 'a', 'data' => 'x']), 'a batch holds at most 10000 messages, got 10001'],
            'not an array' => [['hello'], 'message 1: expected an array with "queue" and "data", got string'],
            'null entry' => [[['queue' => 'a', 'data' => 'x'], null], 'message 2: expected an array with "queue" and "data", got null'],
            'object entry' => [[new \stdClass()], 'message 1: expected an array with "queue" and "data", got stdClass'],
            'unknown key' => [[['queue' => 'a', 'data' => 'x', 'type' => 'json']], 'message 1: unknown key "type" (allowed: "queue", "data", "json")'],
            'numeric key' => [[['a', 'x']], 'message 1: unknown key "0" (allowed: "queue", "data", "json")'],
            'missing queue' => [[['data' => 'x']], 'message 1: missing "queue"'],
            'missing data' => [[['queue' => 'a']], 'message 1: missing "data"'],
            'json not bool' => [[['queue' => 'a', 'data' => 'x', 'json' => 1]], 'message 1: "json" must be a bool, got int'],
            'queue not string' => [[['queue' => 5, 'data' => 'x']], 'message 1: "queue" must be a string, got int'],
            'data not string' => [[['queue' => 'a', 'data' => ['x']]], 'message 1: "data" must be a string unless "json" is true, got array'],
            'data float' => [[['queue' => 'a', 'data' => 1.5]], 'message 1: "data" must be a string unless "json" is true, got float'],
            'data null' => [[['queue' => 'a', 'data' => null]], 'message 1: "data" must be a string unless "json" is true, got null'],
        ];
        $out = [];
        foreach ($this->transports() as $t => [$transport]) {
            foreach ($batches as $n => [$batch, $detail]) {
                $out["$t $n"] = [$transport, $batch, $detail];
            }
        }
        return $out;
    }

    /** @dataProvider badBatches */
    public function testBadBatches(string $transport, array $batch, string $detail): void
    {
        $c = $this->client($transport);
        $this->assertInvalid(function () use ($c, $batch) {
            $c->publishMany($batch);
        }, $detail);
    }

    /** @return array<string,array{string,array,string}> */
    public function badConstructions(): array
    {
        $bad = 'expected http://HOST:PORT with an optional path';
        return [
            'ftp' => ['ftp://127.0.0.1:1802', [], 'invalid URL "ftp://127.0.0.1:1802": ' . $bad],
            'no scheme' => ['127.0.0.1:1802', [], 'invalid URL "127.0.0.1:1802": ' . $bad],
            'no host' => ['http://', [], 'invalid URL "http://": ' . $bad],
            'query' => ['http://h:1/?a=1', [], 'invalid URL "http://h:1/?a=1": ' . $bad],
            'fragment' => ['http://h:1/#x', [], 'invalid URL "http://h:1/#x": ' . $bad],
            'user' => ['http://u:p@h:1', [], 'invalid URL "http://u:p@h:1": ' . $bad],
            'space' => ['http://h:1/a b', [], 'invalid URL "http://h:1/a b": ' . $bad],
            'CRLF' => ["http://h:1/\r\nX: y", [], 'invalid URL "http://h:1/\x0D\x0AX: y": ' . $bad],
            'unknown option' => ['http://h:1', ['secrets' => 'x'], 'unknown option "secrets" (allowed: "secret", "timeout", "transport", "subscribe_secret")'],
            'timeout string' => ['http://h:1', ['timeout' => '5'], 'option "timeout" must be a number of seconds, got string'],
            'timeout zero' => ['http://h:1', ['timeout' => 0], 'option "timeout" must be more than 0 and at most 86400 seconds'],
            'timeout negative' => ['http://h:1', ['timeout' => -1.5], 'option "timeout" must be more than 0 and at most 86400 seconds'],
            'timeout NAN' => ['http://h:1', ['timeout' => \NAN], 'option "timeout" must be more than 0 and at most 86400 seconds'],
            'secret int' => ['http://h:1', ['secret' => 5], 'option "secret" must be a string or null, got int'],
            'secret with space' => ['http://h:1', ['secret' => 'a b'], 'option "secret" must be printable ASCII without spaces'],
            'secret with CRLF' => ['http://h:1', ['secret' => "a\r\nX-Evil: 1"], 'option "secret" must be printable ASCII without spaces'],
            'transport' => ['http://h:1', ['transport' => 'socket'], 'option "transport" must be "auto", "ext", "curl" or "stream"'],
            'subscribe_secret int' => ['http://h:1', ['subscribe_secret' => 16], 'option "subscribe_secret" must be a string or null, got int'],
        ];
    }

    /** @dataProvider badConstructions */
    public function testBadConstruction(string $url, array $options, string $detail): void
    {
        $this->assertInvalid(function () use ($url, $options) {
            new Client($url, $options);
        }, $detail);
    }

    public function testUnavailableTransportsAreRefused(): void
    {
        if (!\function_exists('curl_init')) {
            $this->assertInvalid(function () {
                new Client('http://h:1', ['transport' => 'curl']);
            }, 'transport "curl" needs the curl extension, which is not loaded');
        } else {
            $this->assertSame('curl', (new Client('http://h:1', ['transport' => 'curl']))->getTransport());
        }
        if (!\function_exists('cometbox_publish_many')) {
            $this->assertInvalid(function () {
                new Client('http://h:1', ['transport' => 'ext']);
            }, 'transport "ext" needs the cometbox extension, which is not loaded');
        } else {
            $this->assertInvalid(function () {
                new Client('https://h:1', ['transport' => 'ext']);
            }, 'transport "ext" speaks plain http only');
        }
    }
}
