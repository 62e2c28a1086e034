<?php
// How each transport turns answers into ids or exceptions, against a scripted
// server (support/fake_server.php) that can answer what the real daemon cannot
// be made to: every documented status, garbage, silence, a full backlog.
// Also checks the exact request bytes each transport sends.

declare(strict_types=1);

namespace Cometbox\Tests;

use Cometbox\Client;
use Cometbox\Exception;

final class ErrorMappingTest extends TestCase
{
    private function client(string $transport, string $url, array $options = []): Client
    {
        return new Client($url, $options + ['transport' => $transport, 'timeout' => 5]);
    }

    /** @return array<string,array{string,int,string,string}> */
    public function daemonErrors(): array
    {
        $cases = [
            400 => ['malformed', 'line 3, column 12: mismatched tag'],
            404 => ['not_found', 'no such path: /publish'],
            405 => ['method_not_allowed', 'use POST'],
            413 => ['too_large', 'message 2 is over max-message-bytes (65536)'],
            415 => ['unsupported_media_type', 'Content-Type text/plain is not XML or JSON'],
            503 => ['unavailable', 'too many queues'],
        ];
        $out = [];
        foreach ($this->transports() as $t => [$transport]) {
            foreach ($cases as $status => [$code, $detail]) {
                $out["$t $status"] = [$transport, $status, $code, $detail];
            }
        }
        return $out;
    }

    /** @dataProvider daemonErrors */
    public function testEachDocumentedStatusBecomesTheException(string $transport, int $status, string $code, string $detail): void
    {
        $s = new FakeServer([FakeServer::answer($status, \json_encode(['error' => $code, 'detail' => $detail]))]);
        $c = $this->client($transport, $s->url);
        $this->assertThrowsCometbox(
            function () use ($c) {
                $c->publish('alice', 'x');
            },
            $status,
            $code,
            $detail,
            "cometbox: HTTP $status $code: $detail"
        );
        $this->assertThrowsCometbox(
            function () use ($c) {
                $c->publishMany([['queue' => 'a', 'data' => 'x'], ['queue' => 'b', 'data' => 1, 'json' => true]]);
            },
            $status,
            $code,
            $detail,
            "cometbox: HTTP $status $code: $detail"
        );
    }

    /** @dataProvider transports */
    public function testErrorWithoutDetail(string $transport): void
    {
        $s = new FakeServer([FakeServer::answer(503, '{"error":"unavailable"}')]);
        $this->assertThrowsCometbox(
            function () use ($transport, $s) {
                $this->client($transport, $s->url)->publish('alice', 'x');
            },
            503,
            'unavailable',
            '',
            'cometbox: HTTP 503 unavailable: '
        );
    }

    /** @dataProvider transports */
    public function testNonCometboxErrorBodyIsHttpError(string $transport): void
    {
        $html = "<html>\r\n<body>502 Bad \x01Gateway</body></html>\n" . \str_repeat('x', 300);
        $s = new FakeServer([FakeServer::answer(502, $html, 'text/html')]);
        $snippet = \substr("<html>??<body>502 Bad ?Gateway</body></html>?" . \str_repeat('x', 300), 0, 200);
        $this->assertThrowsCometbox(
            function () use ($transport, $s) {
                $this->client($transport, $s->url)->publish('alice', 'x');
            },
            502,
            'http_error',
            $snippet,
            "cometbox: HTTP 502 from {$s->url}/publish: $snippet"
        );
    }

    /** @return array<string,array{string,string,string}> */
    public function badSuccessBodies(): array
    {
        $cases = [
            'not json' => ['ids: 1', 'body is not JSON'],
            'json scalar' => ['17', 'body is not JSON'],
            'no ids' => ['{"id":1}', 'expected {"ids":[...]} with 1 id'],
            'two ids for one' => ['{"ids":[1,2]}', 'expected {"ids":[...]} with 1 id'],
            'ids not a list' => ['{"ids":{"a":1}}', 'expected {"ids":[...]} with 1 id'],
            'string id' => ['{"ids":["1"]}', 'ids must be positive integers'],
            'negative id' => ['{"ids":[-5]}', 'ids must be positive integers'],
            'float id' => ['{"ids":[1.5]}', 'ids must be positive integers'],
        ];
        $out = [];
        foreach ($this->transports() as $t => [$transport]) {
            foreach ($cases as $name => [$body, $why]) {
                $out["$t $name"] = [$transport, $body, $why];
            }
        }
        return $out;
    }

    /** @dataProvider badSuccessBodies */
    public function testBadSuccessBodyIsBadResponse(string $transport, string $body, string $why): void
    {
        $s = new FakeServer([FakeServer::answer(200, $body)]);
        $this->assertThrowsCometbox(
            function () use ($transport, $s) {
                $this->client($transport, $s->url)->publish('alice', 'x');
            },
            200,
            'bad_response',
            $why,
            "cometbox: unexpected answer from {$s->url}/publish: $why"
        );
    }

    /** @dataProvider transports */
    public function testChunkedAndCloseFramedAnswersAreRead(string $transport): void
    {
        $s = new FakeServer([
            ['raw' => "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                . "4\r\n{\"id\r\n5;ext=1\r\ns\":[7\r\n7\r\n,8,9]}\n\r\n0\r\nX-Trailer: y\r\n\r\n"],
            ['raw' => "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{\"ids\":[10]}"],
            ['raw' => "HTTP/1.1 200 OK\r\ncontent-length: 12\r\n\r\n{\"ids\":[11]}trailing junk ignored"],
        ]);
        $c = $this->client($transport, $s->url);
        $this->assertSame([7, 8, 9], $c->publishMany([
            ['queue' => 'a', 'data' => '1'], ['queue' => 'a', 'data' => '2'], ['queue' => 'a', 'data' => '3'],
        ]));
        $this->assertSame(10, $c->publish('a', 'x'));
        $this->assertSame(11, $c->publish('a', 'y'));
    }

    /** @dataProvider transports */
    public function testHugeAnswerIsRefused(string $transport): void
    {
        $body = '{"ids":[1],"pad":"' . \str_repeat('p', 4 * 1024 * 1024) . '"}';
        $s = new FakeServer([FakeServer::answer(200, $body)]);
        $this->assertThrowsCometbox(
            function () use ($transport, $s) {
                $this->client($transport, $s->url, ['timeout' => 20])->publish('alice', 'x');
            },
            0,
            'bad_response',
            'answer larger than 4194304 bytes',
            "cometbox: answer from {$s->url}/publish is larger than 4194304 bytes"
        );
    }

    /** @dataProvider transports */
    public function testSilentServerTimesOutWithinTheTimeout(string $transport): void
    {
        $s = new FakeServer([['silent' => true]]);
        $start = \microtime(true);
        $this->assertThrowsCometbox(
            function () use ($transport, $s) {
                $this->client($transport, $s->url, ['timeout' => 0.6])->publish('alice', 'x');
            },
            0,
            'timeout',
            'no answer within 0.6 s',
            "cometbox: no answer from {$s->url}/publish within 0.6 s"
        );
        $elapsed = \microtime(true) - $start;
        $this->assertGreaterThanOrEqual(0.55, $elapsed);
        $this->assertLessThan(2.0, $elapsed, 'the timeout bounds the whole publish');
    }

    /** @dataProvider transports */
    public function testHalfAnswerThenSilenceTimesOut(string $transport): void
    {
        // The head promises 100 bytes; 9 come; then nothing, connection open.
        $s = new FakeServer([['raw' => "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"ids\":[1", 'hold' => true]]);
        $start = \microtime(true);
        $this->assertThrowsCometbox(
            function () use ($transport, $s) {
                $this->client($transport, $s->url, ['timeout' => 0.6])->publish('alice', 'x');
            },
            0,
            'timeout',
            'no answer within 0.6 s',
            "cometbox: no answer from {$s->url}/publish within 0.6 s"
        );
        $this->assertLessThan(2.0, \microtime(true) - $start);
    }

    /** @dataProvider transports */
    public function testServerThatClosesWithoutAnAnswer(string $transport): void
    {
        $s = new FakeServer([['close' => true]]);
        $this->assertThrowsCometbox(
            function () use ($transport, $s) {
                $this->client($transport, $s->url)->publish('alice', 'x');
            },
            0,
            'connection_failed',
            null,
            '#^cometbox: cannot reach ' . \preg_quote($s->url, '#') . '/publish: .+#'
        );
    }

    /** @dataProvider transports */
    public function testUnacceptedConnectionTimesOut(string $transport): void
    {
        // Listening, never accepting: the connection completes in the kernel,
        // the request goes out, no answer ever comes.
        $srv = \stream_socket_server('tcp://127.0.0.1:0');
        $url = 'http://' . \stream_socket_get_name($srv, false);
        $start = \microtime(true);
        $this->assertThrowsCometbox(
            function () use ($transport, $url) {
                $this->client($transport, $url, ['timeout' => 0.5])->publish('alice', 'x');
            },
            0,
            'timeout',
            'no answer within 0.5 s',
            "cometbox: no answer from $url/publish within 0.5 s"
        );
        $this->assertLessThan(2.0, \microtime(true) - $start);
        \fclose($srv);
    }

    /** @dataProvider transports */
    public function testConnectThatNeverCompletesTimesOut(string $transport): void
    {
        // A backlog of 0 holds one pending connection; once it is taken, the
        // kernel drops further SYNs, so connect() itself hangs.
        $srv = \stream_socket_server('tcp://127.0.0.1:0', $errno, $errstr, \STREAM_SERVER_BIND | \STREAM_SERVER_LISTEN,
            \stream_context_create(['socket' => ['backlog' => 0]]));
        $name = \stream_socket_get_name($srv, false);
        $filler = \stream_socket_client("tcp://$name", $errno, $errstr, 2);
        $this->assertNotFalse($filler);
        $probe = @\stream_socket_client("tcp://$name", $errno, $errstr, 0.2);
        $this->assertFalse($probe, 'the backlog should be full');
        $url = "http://$name";
        $start = \microtime(true);
        $this->assertThrowsCometbox(
            function () use ($transport, $url) {
                $this->client($transport, $url, ['timeout' => 0.5])->publish('alice', 'x');
            },
            0,
            'timeout',
            'no answer within 0.5 s',
            "cometbox: no answer from $url/publish within 0.5 s"
        );
        $elapsed = \microtime(true) - $start;
        $this->assertGreaterThanOrEqual(0.45, $elapsed);
        $this->assertLessThan(2.0, $elapsed);
        \fclose($filler);
        \fclose($srv);
    }

    /** @dataProvider transports */
    public function testRequestBytes(string $transport): void
    {
        $s = new FakeServer([FakeServer::answer(200, '{"ids":[5]}'), FakeServer::answer(200, '{"ids":[6,7]}')]);
        $c = $this->client($transport, $s->url . '/prefix/', ['secret' => 'tok.EN-1~']);
        $this->assertSame($s->url . '/prefix', $c->getUrl());
        $this->assertSame(5, $c->publish('room.1', "a&b<c>d\re\"f'g\u{E9}"));
        $req = $s->request(0);
        [$head, $body] = \explode("\r\n\r\n", $req, 2) + ['', ''];
        $lines = \explode("\r\n", $head);
        $this->assertSame('POST /prefix/publish HTTP/1.1', $lines[0], $req);
        $this->assertSame('<messages><message queue="room.1">a&amp;b&lt;c&gt;d&#13;e"f\'g' . "\u{E9}</message></messages>", $body);
        $headers = [];
        foreach (\array_slice($lines, 1) as $line) {
            [$k, $v] = \explode(':', $line, 2);
            $headers[\strtolower($k)] = \trim($v);
        }
        $this->assertSame('application/xml; charset=utf-8', $headers['content-type'] ?? null, $req);
        $this->assertSame('Bearer tok.EN-1~', $headers['authorization'] ?? null, $req);
        $this->assertSame((string) \strlen($body), $headers['content-length'] ?? null, $req);
        $this->assertSame(\substr($s->url, 7), $headers['host'] ?? null, $req);

        $this->assertSame([6, 7], $c->publishMany([
            ['queue' => 'a', 'data' => ['k' => "<v>\u{E9}/"], 'json' => true],
            ['queue' => 'b', 'data' => ''],
        ]));
        $body = \explode("\r\n\r\n", $s->request(1), 2)[1] ?? '';
        $this->assertSame('<messages><message queue="a" type="json">{"k":"&lt;v&gt;\u00e9/"}</message>'
            . '<message queue="b"></message></messages>', $body);
    }

    /** @dataProvider transports */
    public function testNoAuthorizationWithoutSecret(string $transport): void
    {
        $s = new FakeServer([FakeServer::answer(200, '{"ids":[5]}')]);
        $this->client($transport, $s->url, ['secret' => ''])->publish('q', 'x');
        $this->assertStringNotContainsStringIgnoringCase("\r\nauthorization:", $s->request(0));
    }
}
