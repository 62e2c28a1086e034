<?php
// Runs fake_server.php in a child process for one test and reads back the
// requests it recorded. Not the daemon: see Daemon.

declare(strict_types=1);

namespace Cometbox\Tests;

final class FakeServer
{
    /** @var resource|null */
    private $proc;
    /** @var array<int,resource> */
    private $pipes = [];
    /** @var string */
    private $dir;
    /** @var string */
    public $url;

    /** @param list<array<string,mixed>> $plan see fake_server.php */
    public function __construct(array $plan)
    {
        $this->dir = \sys_get_temp_dir() . '/cometbox-fake-' . \getmypid() . '-' . \bin2hex(\random_bytes(4));
        \mkdir($this->dir, 0700);
        \file_put_contents($this->dir . '/plan.json', \json_encode($plan));
        $this->proc = \proc_open(
            [\PHP_BINARY, '-n', __DIR__ . '/fake_server.php', $this->dir . '/plan.json', $this->dir],
            [0 => ['file', '/dev/null', 'r'], 1 => ['pipe', 'w'], 2 => ['file', $this->dir . '/stderr', 'w']],
            $this->pipes
        );
        $read = [$this->pipes[1]];
        $w = $e = null;
        if (\stream_select($read, $w, $e, 10) !== 1) {
            $this->stop();
            throw new \RuntimeException('fake server did not start');
        }
        $line = (string) \fgets($this->pipes[1]);
        if (\preg_match('/^port (\d+)$/', \trim($line), $m) !== 1) {
            $this->stop();
            throw new \RuntimeException('fake server said: ' . $line);
        }
        $this->url = 'http://127.0.0.1:' . $m[1];
    }

    public function __destruct()
    {
        $this->stop();
    }

    /** Answer with this status and body (Content-Length framing). */
    public static function answer(int $status, string $body, string $type = 'application/json'): array
    {
        return ['raw' => "HTTP/1.1 $status Whatever\r\nContent-Type: $type\r\nContent-Length: "
            . \strlen($body) . "\r\nConnection: close\r\n\r\n" . $body];
    }

    /** The Nth request the server read, raw; waits briefly for the child to write it. */
    public function request(int $n = 0): string
    {
        $file = $this->dir . "/request-$n";
        $deadline = \microtime(true) + 5.0;
        while (!\is_file($file) && \microtime(true) < $deadline) {
            \usleep(2000); // polling a condition
        }
        return (string) @\file_get_contents($file);
    }

    public function stop(): void
    {
        if ($this->proc !== null) {
            foreach ($this->pipes as $p) {
                @\fclose($p);
            }
            \proc_terminate($this->proc, 9);
            \proc_close($this->proc);
            $this->proc = null;
        }
        if (\is_dir($this->dir)) {
            foreach (\glob($this->dir . '/*') ?: [] as $f) {
                @\unlink($f);
            }
            @\rmdir($this->dir);
        }
    }
}
