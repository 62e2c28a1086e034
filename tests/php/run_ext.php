<?php
// Test driver of the cometbox extension (CTest "php_ext"): builds
// clients/php-ext in a temporary copy with phpize/configure/make, starts three
// real cometboxd daemons (default limits, small limits, subscribe-auth = token), runs the extension's .phpt tests with `make test`
// (their URLs in the environment), then the PHPUnit suite with the extension
// loaded (transport "ext"). Exits non-zero when anything fails or is skipped.
//
// Usage: php tests/php/run_ext.php [--valgrind]
//   --valgrind  run the .phpt tests under valgrind (run-tests.php -m, which
//               sets USE_ZEND_ALLOC=0; plus VALGRIND_OPTS=--leak-check=full)
//               and fail on any memory error or definite/indirect leak;
//               skips the PHPUnit part.
// Env: COMETBOXD (daemon binary), CBX_EXT_KEEP=1 keeps the build directory.

declare(strict_types=1);

require __DIR__ . '/support/Daemon.php';

use Cometbox\Tests\Daemon;

$valgrind = \in_array('--valgrind', $argv, true);
$root = \dirname(__DIR__, 2);
$src = "$root/clients/php-ext";
$build = \sys_get_temp_dir() . '/cometbox-ext-' . \getmypid();
$failed = [];

function say(string $s): void
{
    \fwrite(\STDOUT, $s . "\n");
    \fflush(\STDOUT);
}

/** Runs $cmd in $cwd with extra env; returns [exit code, output]. */
function run(array $cmd, string $cwd, array $env = [], bool $echo = false): array
{
    $p = \proc_open($cmd, [0 => ['file', '/dev/null', 'r'], 1 => ['pipe', 'w'], 2 => ['redirect', 1]], $pipes, $cwd, $env + \getenv());
    $out = '';
    while (!\feof($pipes[1])) {
        $chunk = (string) \fread($pipes[1], 8192);
        $out .= $chunk;
        if ($echo) {
            \fwrite(\STDOUT, $chunk);
        }
    }
    \fclose($pipes[1]);
    return [\proc_close($p), $out];
}

function rmTree(string $dir): void
{
    if (!\is_dir($dir)) {
        return;
    }
    $it = new RecursiveIteratorIterator(new RecursiveDirectoryIterator($dir, FilesystemIterator::SKIP_DOTS), RecursiveIteratorIterator::CHILD_FIRST);
    foreach ($it as $f) {
        $f->isDir() && !$f->isLink() ? \rmdir($f->getPathname()) : \unlink($f->getPathname());
    }
    \rmdir($dir);
}

// 1. A clean copy of the sources only (the work tree may hold an in-place build).
\mkdir("$build/tests", 0700, true);
foreach (\array_merge(\glob("$src/*.{c,h,m4,php}", \GLOB_BRACE), \glob("$src/tests/*.{phpt,inc}", \GLOB_BRACE)) as $f) {
    \copy($f, $build . \substr($f, \strlen($src)));
}
// The generated arginfo must stay newer than its stub, or make would try to
// regenerate it (gen_stub.php needs PHP-Parser, which may not be installed).
\touch("$build/cometbox_arginfo.h", \filemtime("$build/cometbox.stub.php") + 1);
$phpts = \glob("$build/tests/*.phpt");
say('php_ext: building in ' . $build . ' (' . \count($phpts) . ' .phpt tests)');
foreach ([['phpize'], ['./configure', '--enable-cometbox'], ['make', '-j2']] as $step) {
    [$rc, $out] = run($step, $build);
    if ($rc !== 0) {
        say($out);
        say('php_ext: FAILED at ' . \implode(' ', $step));
        exit(1);
    }
}
[$rc, $out] = run(['make'], $build);
if (\preg_match('/warning:/', $out)) {
    say($out);
}

// 2. The daemons.
try {
    $d = new Daemon();
    $small = new Daemon(['--max-message-bytes', '64', '--max-publish-bytes', '4096']);
    $tokenSecret = \bin2hex(\random_bytes(16));
    $token = new Daemon(['--subscribe-auth', 'token', '--subscribe-secret', $tokenSecret]);
} catch (\RuntimeException $e) {
    say('php_ext: ' . $e->getMessage());
    exit(1);
}
$env = [
    'COMETBOX_URL' => $d->publishUrl,
    'COMETBOX_BROWSER_URL' => $d->browserUrl,
    'COMETBOX_SMALL_URL' => $small->publishUrl,
    'COMETBOX_SMALL_BROWSER_URL' => $small->browserUrl,
    'COMETBOX_TOKEN_BROWSER_URL' => $token->browserUrl,
    'COMETBOX_TOKEN_SECRET' => $tokenSecret,
    'COMETBOX_FAKE_SERVER' => __DIR__ . '/support/fake_server.php',
    'NO_INTERACTION' => '1',
    'REPORT_EXIT_STATUS' => '1',
];

// 3. make test. run-tests.php's exit status is not trusted alone: the summary
// must show every .phpt passed (none skipped, none failed, no leak).
$tests = ($valgrind ? '-m ' : '') . '--show-diff tests';
if ($valgrind) {
    // run-tests.php -m runs `valgrind -q` with the default leak check, which
    // prints nothing for leaks: ask for them, so that a leak fails the test.
    $env['VALGRIND_OPTS'] = '--leak-check=full --errors-for-leak-kinds=definite,indirect';
}
[$rc, $out] = run(['make', 'test', 'NO_INTERACTION=1', "TESTS=$tests"], $build, $env, true);
$count = static function (string $label) use ($out): int {
    return \preg_match('/^' . $label . '\s*:\s*(\d+)/m', $out, $m) === 1 ? (int) $m[1] : -1;
};
$passed = $count('Tests passed');
$bad = $count('Tests failed');
$skipped = $count('Tests skipped');
if ($passed !== \count($phpts) || $bad !== 0 || \preg_match('/^(FAIL|SKIP|LEAK|BORK)/m', $out)) {
    $failed[] = "make test: $passed of " . \count($phpts) . " .phpt passed (failed: $bad, skipped: $skipped, exit $rc)";
}
if ($skipped !== 0) {
    // A .phpt skips when its COMETBOX_* variable is missing: here they are all set, so a skip is a bug.
    $failed[] = "make test: $skipped .phpt skipped although the driver set their variables";
}
if ($valgrind && !\preg_match('/valgrind/i', $out)) {
    $failed[] = 'make test -m: no sign that valgrind ran';
}

// 4. The class test suite with the extension loaded (transport "ext").
if (!$valgrind) {
    $php = [\PHP_BINARY, '-n', '-d', 'extension=curl', '-d', "extension=$build/modules/cometbox.so"];
    foreach (['tokenizer', 'dom', 'xmlwriter', 'xml', 'mbstring'] as $ext) {
        \array_push($php, '-d', "extension=$ext");
    }
    $phpunit = \getenv('PHPUNIT') ?: '/usr/bin/phpunit';
    [$rc, $out] = run(\array_merge($php, [$phpunit, '-c', __DIR__ . '/phpunit.xml']), __DIR__,
        ['COMETBOX_EXPECT_TRANSPORT' => 'ext'], true);
    if ($rc !== 0) {
        $failed[] = "phpunit with the extension loaded: exit $rc";
    }
}

foreach ([$d, $small, $token] as $daemon) {
    try {
        $daemon->stop();
    } catch (\RuntimeException $e) {
        $failed[] = $e->getMessage();
    }
}
if (\getenv('CBX_EXT_KEEP') !== '1') {
    rmTree($build);
}
if ($failed) {
    say('php_ext: FAILED: ' . \implode('; ', $failed));
    exit(1);
}
say('php_ext: all passed');
