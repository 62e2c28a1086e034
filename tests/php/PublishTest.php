<?php
// Cometbox\Client against the real cometboxd: ids, round trips of hostile
// text to a subscriber (GET /poll), batches, and every publish error the
// daemon answers, over each transport this PHP can run.

declare(strict_types=1);

namespace Cometbox\Tests;

use Cometbox\Client;
use Cometbox\Exception;

final class PublishTest extends TestCase
{
    /** @var Daemon|null default limits */
    private static $daemon;
    /** @var Daemon|null max-message-bytes 64, max-publish-bytes 4096 */
    private static $small;

    public static function setUpBeforeClass(): void
    {
        self::$daemon = new Daemon();
        self::$small = new Daemon(['--max-message-bytes', '64', '--max-publish-bytes', '4096']);
    }

    public static function tearDownAfterClass(): void
    {
        self::$daemon->stop();
        self::$small->stop();
        self::$daemon = self::$small = null;
    }

    private function client(string $transport, array $options = [], ?Daemon $d = null): Client
    {
        return new Client(($d ?? self::$daemon)->publishUrl, $options + ['transport' => $transport, 'timeout' => 10]);
    }

    /** @dataProvider transports */
    public function testPublishReturnsTheIdTheSubscriberSees(string $transport): void
    {
        $c = $this->client($transport);
        $this->assertSame($transport, $c->getTransport());
        $q = self::queue();
        $before = (int) (\microtime(true) * 1e6);
        $id = $c->publish($q, 'Hello');
        // PROTOCOL.md: ids start at the wall clock in microseconds and stay below 2^53.
        $this->assertGreaterThanOrEqual($before - 60 * 1000000, $id);
        $this->assertLessThan(2 ** 53, $id);
        $this->assertSame([['id' => $id, 'queue' => $q, 'data' => 'Hello']], self::$daemon->poll($q));
    }

    /** @dataProvider transports */
    public function testHostileTextRoundTripsExactly(string $transport): void
    {
        $c = $this->client($transport);
        $q = self::queue('hostile');
        $expected = [];
        foreach (self::hostileStrings() as $name => $text) {
            $id = $c->publish($q, $text);
            $expected[] = ['id' => $id, 'queue' => $q, 'data' => $text];
        }
        $got = self::$daemon->poll($q);
        $this->assertCount(\count($expected), $got);
        foreach (\array_keys(self::hostileStrings()) as $i => $name) {
            $this->assertSame($expected[$i], $got[$i], "hostile string '$name' did not round-trip");
        }
    }

    /** @dataProvider transports */
    public function testHostileTextRoundTripsInOneBatch(string $transport): void
    {
        $c = $this->client($transport);
        $q = self::queue('batch');
        $messages = [];
        foreach (self::hostileStrings() as $name => $text) {
            $messages[$name] = ['queue' => $q, 'data' => $text];
        }
        $ids = $c->publishMany($messages);
        $this->assertCount(\count($messages), $ids);
        $expected = [];
        foreach (\array_values($messages) as $i => $m) {
            $expected[] = ['id' => $ids[$i], 'queue' => $q, 'data' => $m['data']];
        }
        $this->assertSame($expected, self::$daemon->poll($q));
    }

    /** @dataProvider transports */
    public function testPublishJsonDeliversTheValue(string $transport): void
    {
        $c = $this->client($transport);
        $q = self::queue('json');
        $values = [
            ['x' => 1, 'list' => [1, 2, 3], 'null' => null, 'yes' => true, 'no' => false, 'half' => 1.5],
            ['text' => "<&>\"'\r\n\u{1F389}\u{2028}", 'ctrl' => "\x01\x1F\x7F", 'slash' => 'a/b'],
            [],
            42,
            'a JSON string becomes a text message',
            "control \x01 characters travel as JSON",
            null,
        ];
        $expected = [];
        foreach ($values as $v) {
            $expected[] = ['id' => $c->publishJson($q, $v), 'queue' => $q, 'data' => $v];
        }
        $this->assertSame($expected, self::$daemon->poll($q));
    }

    /**
     * U+0000 is a JSON string character like any other ("a\u0000b"); XML text
     * cannot carry it, so publishJson() is the documented way to send it.
     *
     * @dataProvider transports
     */
    public function testJsonStringWithNulIsRefusedAndNothingQueued(string $transport): void
    {
        // PROTOCOL.md: message data never contains NUL; a \u0000 escape is refused with 400
        $c = $this->client($transport);
        $q = self::queue('nul');
        foreach ([['k' => "a\0b"], "x\0y"] as $value) {
            try {
                $c->publishJson($q, $value);
                $this->fail('a JSON string with U+0000 must be refused');
            } catch (\Cometbox\Exception $e) {
                $this->assertSame(400, $e->getStatus());
                $this->assertSame('malformed', $e->getErrorCode());
                $this->assertStringContainsString('\\u0000 is not allowed in a string', $e->getDetail());
            }
        }
        $this->assertSame([], self::$daemon->poll($q));
    }

    /** @dataProvider transports */
    public function testPublishManyReturnsIdsInBatchOrder(string $transport): void
    {
        $c = $this->client($transport);
        $a = self::queue('a');
        $b = self::queue('b');
        $ids = $c->publishMany([
            'first' => ['queue' => $a, 'data' => 'one'],
            'second' => ['queue' => $b, 'data' => ['n' => 2], 'json' => true],
            'third' => ['queue' => $a, 'data' => 'three', 'json' => false],
            'fourth' => ['queue' => $b, 'data' => 'four', 'json' => null],
        ]);
        $this->assertCount(4, $ids);
        $this->assertSame(\array_keys($ids), [0, 1, 2, 3], 'ids are a list');
        $this->assertTrue($ids[0] < $ids[1] && $ids[1] < $ids[2] && $ids[2] < $ids[3], 'ids grow: ' . \implode(',', $ids));
        $this->assertSame([
            ['id' => $ids[0], 'queue' => $a, 'data' => 'one'],
            ['id' => $ids[1], 'queue' => $b, 'data' => ['n' => 2]],
            ['id' => $ids[2], 'queue' => $a, 'data' => 'three'],
            ['id' => $ids[3], 'queue' => $b, 'data' => 'four'],
        ], self::$daemon->poll("$a,$b"));

        // The next publish, on any queue, gets a higher id.
        $this->assertGreaterThan($ids[3], $c->publish(self::queue('c'), 'later'));
    }

    /** @dataProvider transports */
    public function testLargeBatch(string $transport): void
    {
        $c = $this->client($transport);
        $q = self::queue('big');
        $messages = [];
        for ($i = 0; $i < 500; $i++) {
            $messages[] = ['queue' => $q, 'data' => "m$i <&>"];
        }
        $ids = $c->publishMany($messages);
        $this->assertCount(500, $ids);
        $sorted = $ids;
        \sort($sorted);
        $this->assertSame($sorted, $ids);
        $this->assertSame(500, \count(\array_unique($ids)));
        // A poll answers at most max-batch (100) messages, lowest ids first.
        $got = self::$daemon->poll($q);
        $this->assertCount(100, $got);
        $this->assertSame(['id' => $ids[0], 'queue' => $q, 'data' => 'm0 <&>'], $got[0]);
        $this->assertSame(['id' => $ids[99], 'queue' => $q, 'data' => 'm99 <&>'], $got[99]);
    }

    /** @dataProvider transports */
    public function testLongestQueueNameAndAllItsCharacters(string $transport): void
    {
        $c = $this->client($transport);
        $q = \substr('Az09._:@-' . \bin2hex(\random_bytes(64)), 0, 128);
        $id = $c->publish($q, 'x');
        $this->assertSame([['id' => $id, 'queue' => $q, 'data' => 'x']], self::$daemon->poll($q));
    }

    /** @dataProvider transports */
    public function testSecretIsSentAndTheDaemonStillAccepts(string $transport): void
    {
        // The daemon ignores Authorization until subscriber/publisher auth exists.
        $c = $this->client($transport, ['secret' => 's3cr3t-token']);
        $q = self::queue();
        $id = $c->publish($q, 'with secret');
        $this->assertSame([['id' => $id, 'queue' => $q, 'data' => 'with secret']], self::$daemon->poll($q));
    }

    /** @dataProvider transports */
    public function testWrongPathIs404(string $transport): void
    {
        $c = new Client(self::$daemon->publishUrl . '/nope', ['transport' => $transport, 'timeout' => 10]);
        $this->assertThrowsCometbox(
            function () use ($c) {
                $c->publish('alice', 'x');
            },
            404,
            'not_found',
            null,
            '/^cometbox: HTTP 404 not_found: /'
        );
    }

    /** @dataProvider transports */
    public function testMessageOverMaxMessageBytesIs413AndTheBatchIsAtomic(string $transport): void
    {
        $c = $this->client($transport, [], self::$small);
        $q = self::queue('limit');
        $id = $c->publish($q, \str_repeat('a', 64));
        $this->assertSame([['id' => $id, 'queue' => $q, 'data' => \str_repeat('a', 64)]], self::$small->poll($q));

        $q2 = self::queue('atomic');
        $this->assertThrowsCometbox(
            function () use ($c, $q2) {
                $c->publishMany([
                    ['queue' => $q2, 'data' => 'fits'],
                    ['queue' => $q2, 'data' => \str_repeat('b', 65)],
                ]);
            },
            413,
            'too_large',
            null,
            '/^cometbox: HTTP 413 too_large: .+/'
        );
        $this->assertSame([], self::$small->poll($q2), 'nothing of a refused batch is queued');
    }

    /** @dataProvider transports */
    public function testBodyOverMaxPublishBytesIs413(string $transport): void
    {
        $c = $this->client($transport, [], self::$small);
        $q = self::queue('body');
        $messages = \array_fill(0, 100, ['queue' => $q, 'data' => \str_repeat('c', 50)]);
        $this->assertThrowsCometbox(
            function () use ($c, $messages) {
                $c->publishMany($messages);
            },
            413,
            'too_large',
            null,
            '/^cometbox: HTTP 413 too_large: .+/'
        );
        $this->assertSame([], self::$small->poll($q));
    }

    /**
     * The class and the daemon count batch entries alike, from 1: the same
     * second entry without "data" is "message 2" on both sides.
     *
     * @dataProvider transports
     */
    public function testBatchPositionsCountFromOneAsTheDaemonCounts(string $transport): void
    {
        $c = $this->client($transport);
        if ($transport !== 'ext') {
            $this->assertThrowsCometbox(function () use ($c) {
                self::rawSend($c, 'POST', '/publish', 'application/json', '[{"queue":"a","data":"x"},{"queue":"a"}]');
            }, 400, 'malformed', '/^message 2: /', null);
        }
        $this->assertThrowsCometbox(function () use ($c) {
            $c->publishMany([['queue' => 'a', 'data' => 'x'], ['queue' => 'a']]);
        }, 0, 'invalid_argument', 'message 2: missing "data"', 'cometbox: message 2: missing "data"');
        $this->assertThrowsCometbox(function () use ($c) {
            $c->publishMany([['queue' => 'a b', 'data' => 'x']]);
        }, 0, 'invalid_argument', '/^message 1: invalid queue name "a b": /', null);
    }

    /**
     * What the class never sends, sent raw through its own HTTP code, must
     * come back as the documented exception.
     *
     * @dataProvider rawTransports
     */
    public function testEveryOtherPublishErrorOfTheDaemon(string $transport): void
    {
        $c = $this->client($transport);
        $this->assertThrowsCometbox(
            function () use ($c) {
                self::rawSend($c, 'POST', '/publish', 'application/xml', '<messages><message queue="a">x</messages>');
            },
            400,
            'malformed',
            '/^line \d+, column \d+: /',
            '/^cometbox: HTTP 400 malformed: line \d+, column \d+: /'
        );
        $this->assertThrowsCometbox(
            function () use ($c) {
                self::rawSend($c, 'POST', '/publish', 'application/xml', '<message queue="a b">x</message>');
            },
            400,
            'malformed',
            null,
            '/^cometbox: HTTP 400 malformed: /'
        );
        $this->assertThrowsCometbox(
            function () use ($c) {
                self::rawSend($c, 'POST', '/publish', 'application/xml', '<messages></messages>');
            },
            400,
            'malformed',
            null,
            '/^cometbox: HTTP 400 malformed: /'
        );
        $this->assertThrowsCometbox(
            function () use ($c) {
                self::rawSend($c, 'GET', '/publish', 'application/xml', '');
            },
            405,
            'method_not_allowed',
            null,
            '/^cometbox: HTTP 405 method_not_allowed: /'
        );
        $this->assertThrowsCometbox(
            function () use ($c) {
                self::rawSend($c, 'POST', '/publish', 'text/plain', 'hello');
            },
            415,
            'unsupported_media_type',
            null,
            '/^cometbox: HTTP 415 unsupported_media_type: /'
        );
        $this->assertThrowsCometbox(
            function () use ($c) {
                self::rawSend($c, 'POST', '/elsewhere', 'application/xml', '<message queue="a">x</message>');
            },
            404,
            'not_found',
            null,
            '/^cometbox: HTTP 404 not_found: /'
        );
        // The same helper succeeds on a good JSON body, so the failures above are the daemon's answers.
        $q = self::queue();
        $answer = self::rawSend($c, 'POST', '/publish', 'application/json', \json_encode(['queue' => $q, 'data' => 'raw']));
        $this->assertIsArray($answer['ids'] ?? null);
        $this->assertSame([['id' => $answer['ids'][0], 'queue' => $q, 'data' => 'raw']], self::$daemon->poll($q));
    }

    public function testCurlKeepsTheConnectionAlive(): void
    {
        if (!\function_exists('curl_init')) {
            $this->assertFalse(\extension_loaded('curl'));
            return;
        }
        $c = $this->client('curl');
        $c->publish(self::queue(), 'one');
        $handle = (function () {
            return $this->transport;
        })->call($c);
        $h = (function () {
            return $this->handle;
        })->call($handle);
        $this->assertSame(1, \curl_getinfo($h, \CURLINFO_NUM_CONNECTS), 'the first publish connects');
        $c->publish(self::queue(), 'two');
        $this->assertSame(0, \curl_getinfo($h, \CURLINFO_NUM_CONNECTS), 'the second publish reuses the connection');
        $c->close();
        $c->publish(self::queue(), 'three');
    }

    /** @dataProvider transports */
    public function testDaemonDownThrowsAtOnce(string $transport): void
    {
        $d = new Daemon();
        $url = $d->publishUrl;
        $c = new Client($url, ['transport' => $transport, 'timeout' => 3]);
        $this->assertIsInt($c->publish(self::queue(), 'up'));
        $d->stop();
        $start = \microtime(true);
        $this->assertThrowsCometbox(
            function () use ($c) {
                $c->publish('alice', 'down');
            },
            0,
            'connection_failed',
            null,
            '#^cometbox: cannot reach ' . \preg_quote($url, '#') . '/publish: .+#'
        );
        $this->assertLessThan(3.0, \microtime(true) - $start, 'a refused connection fails before the timeout');
    }
}
