<?php
// A scripted HTTP server for the client tests: answers the Nth connection
// with the Nth entry of a plan and records each request it read. It plays
// answers the real daemon cannot be made to give (503, garbage, silence).
// Usage: php fake_server.php PLAN.json LOGDIR   (prints "port N" on stdout)
//
// A plan entry: {"raw": "bytes to send"} then close; add "hold": true to keep
// the connection open after them until the client goes; {"silent": true} (read
// the request, never answer, wait for the client to go); {"close": true} (read
// the request, close without a byte); {"raw": ..., "drop_next": true} (answer,
// then read the next request on the same connection and close without an
// answer). The last entry repeats.

declare(strict_types=1);

[$plan, $logDir] = [\json_decode((string) \file_get_contents($argv[1]), true), $argv[2]];
$server = \stream_socket_server('tcp://127.0.0.1:0', $errno, $errstr);
if ($server === false) {
    \fwrite(\STDERR, "fake_server: $errstr\n");
    exit(1);
}
$name = \stream_socket_get_name($server, false);
\fwrite(\STDOUT, 'port ' . \substr($name, \strrpos($name, ':') + 1) . "\n");
\fflush(\STDOUT);

for ($n = 0; ; $n++) {
    $conn = @\stream_socket_accept($server, 3600);
    if ($conn === false) {
        continue;
    }
    $request = readRequest($conn);
    \file_put_contents("$logDir/request-$n", $request);
    $step = $plan[\min($n, \count($plan) - 1)];
    if (isset($step['raw'])) {
        // Write in pieces so that clients must reassemble.
        foreach (\str_split($step['raw'], 7000) as $piece) {
            @\fwrite($conn, $piece);
        }
    }
    if (!empty($step['drop_next'])) {
        // Keep-alive trap: wait for the next request on this connection,
        // then close without answering it (as a server closing an idle
        // connection just when the client reuses it).
        readRequest($conn);
    } elseif (!empty($step['silent']) || !empty($step['hold'])) {
        \stream_set_timeout($conn, 60);
        while (!\feof($conn) && @\fread($conn, 8192) !== false) {
            if (\stream_get_meta_data($conn)['timed_out']) {
                break;
            }
        }
    }
    @\fclose($conn);
}

/** Reads a request head and its Content-Length body. */
function readRequest($conn): string
{
    \stream_set_timeout($conn, 10);
    $data = '';
    while (($end = \strpos($data, "\r\n\r\n")) === false) {
        $chunk = \fread($conn, 8192);
        if ($chunk === false || $chunk === '') {
            return $data;
        }
        $data .= $chunk;
    }
    $length = \preg_match('/^Content-Length:\s*(\d+)/mi', \substr($data, 0, $end), $m) === 1 ? (int) $m[1] : 0;
    while (\strlen($data) < $end + 4 + $length) {
        $chunk = \fread($conn, 65536);
        if ($chunk === false || $chunk === '') {
            break;
        }
        $data .= $chunk;
    }
    return $data;
}
