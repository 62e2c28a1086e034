<?php
// Starts the real cometboxd for a test in a temporary directory on free
// loopback ports and stops it again. Readiness is the daemon's own "ready"
// line on stderr, never a fixed sleep. Not a fake: see FakeServer for that.

declare(strict_types=1);

namespace Cometbox\Tests;

final class Daemon
{
    /** @var resource|null */
    private $proc;
    /** @var string */
    private $dir;
    /** @var string */
    public $browserUrl = '';
    /** @var string */
    public $publishUrl = '';
    /** @var string */
    public $adminPath = '';

    /** @param list<string> $extraArgs e.g. ['--max-message-bytes', '64'] */
    public function __construct(array $extraArgs = [])
    {
        $bin = self::binary();
        $this->dir = \sys_get_temp_dir() . '/cometbox-php-test-' . \getmypid() . '-' . \bin2hex(\random_bytes(4));
        if (!\mkdir($this->dir, 0700)) {
            throw new \RuntimeException('cannot create ' . $this->dir);
        }
        $cmd = \array_merge([
            $bin,
            '--listen', '127.0.0.1:0',
            '--publish-listen', '127.0.0.1:0',
            '--admin-socket', $this->dir . '/admin.sock',
        ], $extraArgs);
        $stderr = $this->dir . '/stderr';
        $this->proc = \proc_open(
            $cmd,
            [0 => ['file', '/dev/null', 'r'], 1 => ['file', $this->dir . '/stdout', 'w'], 2 => ['file', $stderr, 'w']],
            $pipes,
            $this->dir
        );
        if (!\is_resource($this->proc)) {
            throw new \RuntimeException('cannot start ' . $bin);
        }
        // Wait for the ready line (up to 20 s on a loaded machine), checking
        // that the daemon is still alive while we wait.
        $deadline = \microtime(true) + 20.0;
        while (true) {
            $text = (string) @\file_get_contents($stderr);
            if (\preg_match('#^cometboxd: ready browser=(http://\S+) publish=(http://\S+) admin=(\S+)$#m', $text, $m) === 1) {
                [, $this->browserUrl, $this->publishUrl, $this->adminPath] = $m;
                return;
            }
            $status = \proc_get_status($this->proc);
            if (!$status['running']) {
                $this->proc = null;
                throw new \RuntimeException(\sprintf(
                    "%s exited (code %d) before it was ready; command: %s\nstderr:\n%s",
                    $bin,
                    $status['exitcode'],
                    \implode(' ', $cmd),
                    $text
                ));
            }
            if (\microtime(true) > $deadline) {
                $this->stop();
                throw new \RuntimeException("no ready line from $bin within 20 s; stderr:\n" . $text);
            }
            \usleep(5000); // polling a condition, not a fixed wait
        }
    }

    public function __destruct()
    {
        try {
            $this->stop();
        } catch (\RuntimeException $e) {
            \fwrite(\STDERR, $e->getMessage() . "\n");
        }
    }

    /** The daemon's path: $COMETBOXD, else the build tree's. */
    public static function binary(): string
    {
        $bin = \getenv('COMETBOXD');
        if ($bin === false || $bin === '') {
            $bin = \dirname(__DIR__, 3) . '/build/cometboxd/cometboxd';
        }
        if (!\is_executable($bin)) {
            throw new \RuntimeException("cometboxd not found at $bin (set COMETBOXD)");
        }
        return $bin;
    }

    /** What the daemon wrote to stderr so far (for failure messages). */
    public function stderr(): string
    {
        return (string) @\file_get_contents($this->dir . '/stderr');
    }

    /**
     * Stops the daemon (SIGTERM, then SIGKILL after 10 s) and removes its
     * directory. Throws when the daemon did not exit with status 0 (a crash,
     * a sanitizer report), with its stderr; a second call does nothing.
     */
    public function stop(): void
    {
        $problem = null;
        if ($this->proc !== null) {
            \proc_terminate($this->proc, 15);
            $deadline = \microtime(true) + 10.0;
            while (($status = \proc_get_status($this->proc))['running']) {
                if (\microtime(true) > $deadline) {
                    \proc_terminate($this->proc, 9);
                    $problem = 'did not stop within 10 s of SIGTERM';
                    break;
                }
                \usleep(5000); // polling a condition
            }
            if ($problem === null && $status['signaled']) {
                $problem = 'was killed by signal ' . $status['termsig'];
            } elseif ($problem === null && $status['exitcode'] !== 0) {
                $problem = 'exited with status ' . $status['exitcode'];
            }
            \proc_close($this->proc);
            $this->proc = null;
            if ($problem !== null) {
                $problem = "cometboxd $problem; stderr:\n" . $this->stderr();
            }
        }
        if (\is_dir($this->dir)) {
            foreach (\glob($this->dir . '/{,.}[!.]*', \GLOB_BRACE) ?: [] as $f) {
                @\unlink($f);
            }
            @\rmdir($this->dir);
        }
        if ($problem !== null) {
            throw new \RuntimeException($problem);
        }
    }

    /**
     * GET /poll/QUEUES?since=0&timeout=0 on the browser port: every retained
     * message of the queues, at once. Uses PHP streams, so it works without curl.
     *
     * @return list<array<string,mixed>>
     */
    public function poll(string $queues, int $since = 0): array
    {
        $url = $this->browserUrl . '/poll/' . $queues . '?since=' . $since . '&timeout=0';
        $ctx = \stream_context_create(['http' => ['timeout' => 10, 'ignore_errors' => true]]);
        $body = @\file_get_contents($url, false, $ctx);
        if ($body === false) {
            throw new \RuntimeException("GET $url failed");
        }
        $status = $http_response_header[0] ?? '';
        if (\strpos($status, ' 200 ') === false) {
            throw new \RuntimeException("GET $url answered $status: $body");
        }
        $decoded = \json_decode($body, true, 512, \JSON_THROW_ON_ERROR);
        if (!\is_array($decoded)) {
            throw new \RuntimeException("GET $url answered a non-array: $body");
        }
        return $decoded;
    }
}
