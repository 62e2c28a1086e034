<?php
// Client::token() (and cometbox_token() when the extension is loaded) against
// the real cometboxd run with --subscribe-auth token: a token opens /poll and
// /events of its queues and nothing else, expires, is bound to the secret,
// and is byte for byte the token the daemon (--make-token) and the extension make.

declare(strict_types=1);

namespace Cometbox\Tests;

use Cometbox\Client;
use Cometbox\Exception;

final class TokenTest extends TestCase
{
    /** @var Daemon|null started with --subscribe-auth token */
    private static $daemon;
    /** @var string its subscribe-secret, new for each run */
    private static $secret = '';

    public static function setUpBeforeClass(): void
    {
        self::$secret = \bin2hex(\random_bytes(16));
        self::$daemon = new Daemon(['--subscribe-auth', 'token', '--subscribe-secret', self::$secret]);
    }

    public static function tearDownAfterClass(): void
    {
        self::$daemon->stop();
        self::$daemon = null;
    }

    private function client(string $transport, ?string $secret = null): Client
    {
        return new Client(self::$daemon->publishUrl, [
            'transport' => $transport,
            'timeout' => 10,
            'subscribe_secret' => $secret ?? self::$secret,
        ]);
    }

    /**
     * GET $path on the browser port over a plain socket (works without curl).
     * With $headOnly (for /events, which never ends) the body is not read.
     *
     * @return array{0:int,1:array<string,string>,2:string} status, headers (lower-case names), body
     */
    private static function get(string $path, bool $headOnly = false): array
    {
        $hostPort = \substr(self::$daemon->browserUrl, \strlen('http://'));
        $s = @\stream_socket_client('tcp://' . $hostPort, $errno, $errstr, 10);
        if ($s === false) {
            throw new \RuntimeException("connect to $hostPort: $errstr");
        }
        \stream_set_timeout($s, 10);
        \fwrite($s, "GET $path HTTP/1.1\r\nHost: $hostPort\r\nConnection: close\r\n\r\n");
        $head = '';
        while (\strpos($head, "\r\n\r\n") === false) {
            $line = \fgets($s);
            if ($line === false) {
                \fclose($s);
                throw new \RuntimeException("GET $path: no complete head, got: " . \json_encode($head));
            }
            $head .= $line;
        }
        $lines = \explode("\r\n", \rtrim($head));
        if (\preg_match('#^HTTP/1\.[01] (\d{3}) #', $lines[0], $m) !== 1) {
            \fclose($s);
            throw new \RuntimeException("GET $path: bad status line " . \json_encode($lines[0]));
        }
        $headers = [];
        foreach (\array_slice($lines, 1) as $line) {
            [$name, $value] = \explode(':', $line, 2) + [1 => ''];
            $headers[\strtolower($name)] = \trim($value);
        }
        $body = '';
        if (!$headOnly) {
            $want = (int) ($headers['content-length'] ?? -1);
            while (!\feof($s) && ($want < 0 || \strlen($body) < $want)) {
                $chunk = \fread($s, 65536);
                if ($chunk === false || ($chunk === '' && \stream_get_meta_data($s)['timed_out'])) {
                    break;
                }
                $body .= $chunk;
            }
        }
        \fclose($s);
        return [(int) $m[1], $headers, $body];
    }

    /** GET /poll/$queues?since=0&timeout=0&token=$token: [status, decoded body]. */
    private static function poll(string $queues, string $token): array
    {
        [$status, , $body] = self::get('/poll/' . $queues . '?since=0&timeout=0&token=' . \rawurlencode($token));
        return [$status, \json_decode($body, true)];
    }

    private function assertForbidden(array $answer, string $detail, string $what): void
    {
        $this->assertSame([403, ['error' => 'forbidden', 'detail' => $detail]], $answer, $what);
    }

    /** @dataProvider transports */
    public function testTokenOpensPollAndEventsOfItsQueues(string $transport): void
    {
        $c = $this->client($transport);
        $a = self::queue('alice');
        $b = self::queue('room');
        $id = $c->publish($a, 'Hello');

        // The daemon really checks: without a token there is nothing to read.
        $this->assertForbidden(self::poll($a, ''), 'a token is required (?token=)', 'no token');

        $token = $c->token([$a, $b]);
        $this->assertSame([200, [['id' => $id, 'queue' => $a, 'data' => 'Hello']]], self::poll($a, $token));
        $this->assertSame([200, []], self::poll($b, $token));
        $this->assertSame(200, self::poll("$b,$a", $token)[0], 'a token covers any subset of its queues');

        [$status, $headers] = self::get("/events/$a?token=" . \rawurlencode($token), true);
        $this->assertSame(200, $status);
        $this->assertStringStartsWith('text/event-stream', $headers['content-type'] ?? '');
        [$status, $headers] = self::get("/events/$a,$b?token=" . \rawurlencode($token), true);
        $this->assertSame(200, $status);
    }

    /** @dataProvider transports */
    public function testTokenForOtherQueuesIs403(string $transport): void
    {
        $c = $this->client($transport);
        $a = self::queue('alice');
        $x = self::queue('x');
        $token = $c->token([$a]);
        $this->assertForbidden(self::poll($x, $token), "token does not cover queue \"$x\"", 'other queue');
        $this->assertForbidden(self::poll("$a,$x", $token), "token does not cover queue \"$x\"", 'one queue too many');

        [$status, , $body] = self::get("/events/$x?token=" . \rawurlencode($token));
        $this->assertSame(403, $status);
        $this->assertSame(['error' => 'forbidden', 'detail' => "token does not cover queue \"$x\""], \json_decode($body, true));

        // The queue list is signed: widening it breaks the signature.
        [$expiry, , $sig] = \explode('.', $token);
        $forged = "$expiry.$a,$x.$sig";
        $this->assertForbidden(self::poll($x, $forged), 'token signature does not match', 'forged queue list');
    }

    /** @dataProvider transports */
    public function testTokenWithTtl1ExpiresAfterItsSecond(string $transport): void
    {
        $c = $this->client($transport);
        $q = self::queue('brief');
        // Valid while time() < EXPIRY = time() + 1, so within the second it was
        // made; a try that straddled a second boundary is made again.
        $worked = false;
        for ($try = 0; $try < 5 && !$worked; $try++) {
            $token = $c->token([$q], 1);
            $expiry = (int) \explode('.', $token)[0];
            $answer = self::poll($q, $token);
            $worked = $answer[0] === 200;
            if (!$worked) {
                $this->assertForbidden($answer, 'token expired', 'refused before its expiry');
                $this->assertGreaterThanOrEqual($expiry, \time(), 'refused as expired before its expiry');
            }
        }
        $this->assertTrue($worked, 'a fresh ttl=1 token never worked in 5 tries');

        // Wait for the daemon's clock (CLOCK_REALTIME, as PHP's) to reach EXPIRY,
        // by polling the time; at most a little over a second.
        $deadline = \microtime(true) + 5.0;
        while (\microtime(true) < $expiry) {
            $this->assertLessThan($deadline, \microtime(true), 'the clock did not reach the expiry');
            \usleep((int) \min(20000, \max(1000, ($expiry - \microtime(true)) * 1e6)));
        }
        $this->assertForbidden(self::poll($q, $token), 'token expired', 'after the expiry');
        [$status] = self::get("/events/$q?token=" . \rawurlencode($token));
        $this->assertSame(403, $status);
    }

    /** @dataProvider transports */
    public function testTokenSignedWithAnotherSecretIs403(string $transport): void
    {
        $q = self::queue();
        $token = $this->client($transport, 'not-the-daemons-secret-0123456789')->token([$q]);
        $this->assertForbidden(self::poll($q, $token), 'token signature does not match', 'wrong secret');
        // One byte off in the secret is enough.
        $near = self::$secret;
        $near[0] = $near[0] === 'a' ? 'b' : 'a';
        $token = $this->client($transport, $near)->token([$q]);
        $this->assertForbidden(self::poll($q, $token), 'token signature does not match', 'secret one byte off');
    }

    /** @dataProvider transports */
    public function testTokenFormatFollowsTheRecipe(string $transport): void
    {
        $c = $this->client($transport);
        $before = \time();
        $token = $c->token(['x' => 'b.q', 7 => 'a:q', 'c@q-_'], 120);
        $after = \time();
        $this->assertMatchesRegularExpression('/^(\d+)\.b\.q,a:q,c@q-_\.([A-Za-z0-9_-]{43})$/D', $token);
        $dot1 = \strpos($token, '.');
        $dot2 = \strrpos($token, '.');
        $expiry = (int) \substr($token, 0, $dot1);
        $this->assertGreaterThanOrEqual($before + 120, $expiry);
        $this->assertLessThanOrEqual($after + 120, $expiry);
        $queues = \substr($token, $dot1 + 1, $dot2 - $dot1 - 1);
        $mac = \hash_hmac('sha256', "cometbox1:$expiry:$queues", self::$secret, true);
        $this->assertSame(\rtrim(\strtr(\base64_encode($mac), '+/', '-_'), '='), \substr($token, $dot2 + 1));
        // Default ttl: an hour.
        $expiry = (int) \explode('.', $c->token(['a']))[0];
        $this->assertContains($expiry - 3600, \range($before, \time()));
        // 16 queues and the longest names and ttl fit.
        $many = [];
        for ($i = 0; $i < 16; $i++) {
            $many[] = \sprintf('%02d', $i) . \str_repeat('q', 126);
        }
        $this->assertStringContainsString(\implode(',', $many), $c->token($many, 31622400));
    }

    /**
     * The class in PHP, the class through the extension, cometbox_token() and
     * the daemon's own --make-token (nettle) give the same token for the same
     * inputs in the same second, for short, long (hashed: over 64 bytes) and
     * binary secrets.
     *
     * @return array<string,array{string,list<string>,int}>
     */
    public function sameTokenCases(): array
    {
        return [
            'shortest secret' => [\str_repeat('s', 16), ['alice'], 1],
            'hex secret, three queues' => [\bin2hex(\random_bytes(32)), ['room.1', 'alice', 'bob@x:y'], 3600],
            'secret of exactly 64 bytes' => [\str_repeat('k', 64), ['q'], 60],
            'secret of 65 bytes' => [\str_repeat('k', 65), ['q'], 60],
            'binary secret of 200 bytes' => [self::binarySecret(200), ['a', 'b'], 31622400],
        ];
    }

    /** @dataProvider sameTokenCases */
    public function testClassExtensionAndDaemonMakeTheSameToken(string $secret, array $queues, int $ttl): void
    {
        $php = $this->client('stream', $secret);
        $ext = \function_exists('cometbox_token') ? $this->client('ext', $secret) : null;
        for ($try = 0; $try < 10; $try++) {
            $t0 = \time();
            $made = ['class in PHP' => $php->token($queues, $ttl)];
            if ($ext !== null) {
                $made['class through the extension'] = $ext->token($queues, $ttl);
                $made['cometbox_token()'] = \cometbox_token($queues, $ttl, $secret);
            }
            $made['cometboxd --make-token'] = self::daemonToken($secret, \implode(',', $queues), $ttl);
            if (\time() !== $t0) {
                continue; // a second boundary passed: the expiries may differ
            }
            $this->assertSame($t0 + $ttl, (int) \explode('.', $made['class in PHP'])[0]);
            foreach ($made as $who => $token) {
                $this->assertSame($made['class in PHP'], $token, "$who made another token");
            }
            $this->assertSame(\extension_loaded('cometbox'), \count($made) === 4);
            return;
        }
        $this->fail('10 tries each crossed a second boundary');
    }

    private static function binarySecret(int $len): string
    {
        $s = '';
        for ($i = 0; $i < $len; $i++) {
            $s .= \chr(1 + ($i * 37) % 255); // every byte but NUL, which argv cannot carry
        }
        return $s;
    }

    private static function daemonToken(string $secret, string $queues, int $ttl): string
    {
        $p = \proc_open(
            [Daemon::binary(), '--subscribe-secret', $secret, '--make-token', $queues, (string) $ttl],
            [0 => ['file', '/dev/null', 'r'], 1 => ['pipe', 'w'], 2 => ['pipe', 'w']],
            $pipes
        );
        $out = \stream_get_contents($pipes[1]);
        $err = \stream_get_contents($pipes[2]);
        \fclose($pipes[1]);
        \fclose($pipes[2]);
        $rc = \proc_close($p);
        if ($rc !== 0) {
            throw new \RuntimeException("cometboxd --make-token exited $rc: $err");
        }
        return \rtrim((string) $out, "\n");
    }

    /** @return array<string,array{string,?string,array,int,string}> */
    public function badTokenArguments(): array
    {
        $rule = 'a queue name is 1 to 128 ASCII letters, digits and . _ : @ -';
        $ok = \str_repeat('s', 16);
        $missing = 'a token needs a subscribe secret (option "subscribe_secret", '
            . 'or ini cometbox.subscribe_secret for the extension)';
        $cases = [
            'no secret' => [null, ['a'], 60, $missing],
            'empty secret' => ['', ['a'], 60, $missing],
            'secret of 15 bytes' => [\str_repeat('s', 15), ['a'], 60, 'the subscribe secret must be at least 16 bytes, got 15'],
            'secret with NUL' => [$ok . "\0", ['a'], 60, 'the subscribe secret must not contain NUL bytes'],
            'no queues' => [$ok, [], 60, 'a token covers 1 to 16 queues, got 0'],
            '17 queues' => [$ok, \array_map('strval', \range(1, 17)), 60, 'a token covers 1 to 16 queues, got 17'],
            'bad name' => [$ok, ['a', 'b c'], 60, 'queue 2: invalid queue name "b c": ' . $rule],
            'comma in a name' => [$ok, ['a,b'], 60, 'queue 1: invalid queue name "a,b": ' . $rule],
            'empty name' => [$ok, [''], 60, 'queue 1: invalid queue name "": ' . $rule],
            'name too long' => [$ok, [\str_repeat('q', 129)], 60, 'queue 1: invalid queue name "' . \str_repeat('q', 64) . '"...: ' . $rule],
            'not a string' => [$ok, ['a', 7], 60, 'queue 2: expected a string, got int'],
            'an array' => [$ok, [['a']], 60, 'queue 1: expected a string, got array'],
            'duplicate' => [$ok, ['a', 'b', 'a'], 60, 'queue 3: duplicate queue name "a"'],
            'ttl 0' => [$ok, ['a'], 0, 'ttl must be 1 to 31622400 seconds, got 0'],
            'ttl negative' => [$ok, ['a'], -1, 'ttl must be 1 to 31622400 seconds, got -1'],
            'ttl over 366 days' => [$ok, ['a'], 31622401, 'ttl must be 1 to 31622400 seconds, got 31622401'],
            'ttl PHP_INT_MAX' => [$ok, ['a'], \PHP_INT_MAX, 'ttl must be 1 to 31622400 seconds, got ' . \PHP_INT_MAX],
            'secret checked first' => ['short', [], 0, 'the subscribe secret must be at least 16 bytes, got 5'],
            'queues before ttl' => [$ok, ['a', 'a'], 0, 'queue 2: duplicate queue name "a"'],
        ];
        $out = [];
        foreach ($this->transports() as $t => [$transport]) {
            foreach ($cases as $name => $case) {
                $out["$t $name"] = \array_merge([$transport], $case);
            }
        }
        return $out;
    }

    /** @dataProvider badTokenArguments */
    public function testBadArgumentsThrow(string $transport, ?string $secret, array $queues, int $ttl, string $detail): void
    {
        $c = new Client('http://127.0.0.1:1', ['transport' => $transport, 'subscribe_secret' => $secret]);
        $this->assertThrowsCometbox(function () use ($c, $queues, $ttl) {
            $c->token($queues, $ttl);
        }, 0, Exception::INVALID_ARGUMENT, $detail, 'cometbox: ' . $detail);
        if (\function_exists('cometbox_token')) {
            // The function says the same (with the secret passed; '' is no secret).
            $this->assertThrowsCometbox(function () use ($secret, $queues, $ttl) {
                \cometbox_token($queues, $ttl, $secret ?? '');
            }, 0, Exception::INVALID_ARGUMENT, $detail, 'cometbox: ' . $detail);
        }
    }

    /** @dataProvider transports */
    public function testTheClassNeverReadsTheIni(string $transport): void
    {
        $c = new Client('http://127.0.0.1:1', ['transport' => $transport]);
        $old = \ini_get('cometbox.subscribe_secret');
        if ($old !== false) {
            \ini_set('cometbox.subscribe_secret', self::$secret);
        }
        try {
            $this->assertThrowsCometbox(function () use ($c) {
                $c->token(['a']);
            }, 0, Exception::INVALID_ARGUMENT, '/^a token needs a subscribe secret /', null);
            if ($old !== false) {
                // ...which cometbox_token() without $secret does use.
                $this->assertSame([200, []], self::poll('a', \cometbox_token(['a'])));
            }
        } finally {
            if ($old !== false) {
                \ini_set('cometbox.subscribe_secret', $old);
            }
        }
    }

    public function testSubscribeSecretOptionType(): void
    {
        $this->assertThrowsCometbox(function () {
            new Client('http://127.0.0.1:1', ['subscribe_secret' => ['x']]);
        }, 0, Exception::INVALID_ARGUMENT, 'option "subscribe_secret" must be a string or null, got array', null);
        // A short secret does not stop a client that only publishes.
        $this->assertInstanceOf(Client::class, new Client('http://127.0.0.1:1', ['subscribe_secret' => 'short']));
    }
}
