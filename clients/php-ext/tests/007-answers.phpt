--TEST--
cometbox: how answers become ids or exceptions (scripted server)
--EXTENSIONS--
cometbox
--SKIPIF--
<?php require __DIR__ . '/cometbox.inc'; skip_without('COMETBOX_FAKE_SERVER'); ?>
--FILE--
<?php
require __DIR__ . '/cometbox.inc';
$plan = [
    answer(400, '{"error":"malformed","detail":"line 3, column 12: mismatched tag"}'),
    answer(404, '{"error":"not_found","detail":"no such path"}'),
    answer(405, '{"error":"method_not_allowed","detail":"use POST"}'),
    answer(413, '{"error":"too_large","detail":"message 2 is over max-message-bytes"}'),
    answer(415, '{"error":"unsupported_media_type","detail":"text/plain"}'),
    answer(503, '{"error":"unavailable"}'),
    answer(502, "<html>\r\n<body>Bad \x01Gateway</body></html>\n" . str_repeat('x', 300), 'text/html'),
    answer(200, 'ids: 1'),
    answer(200, '{"ids":[1,2]}'),
    answer(200, '{"ids":[-5]}'),
    answer(200, '{"ids":{"a":1}}'),
    ['raw' => "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"id\r\n5;ext=1\r\ns\":[7\r\n7\r\n,8,9]}\n\r\n0\r\nX-Trailer: y\r\n\r\n"],
    ['raw' => "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n{\"ids\":[10]}"],
    ['raw' => "HTTP/1.1 200 OK\r\ncontent-length: 12\r\n\r\n{\"ids\":[11]}junk"],
    ['raw' => "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n\r\n\r\n"],
    ['raw' => "garbage\r\n\r\n"],
    ['raw' => "HTTP/1.1 200 OK\r\nContent-Length: 9999999\r\n\r\n"],
    answer(200, '{"ids":[1],"pad":"' . str_repeat('p', 4 * 1024 * 1024) . '"}'),
    ['raw' => "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" . str_repeat("100000\r\n" . str_repeat('c', 0x100000) . "\r\n", 5) . "0\r\n\r\n"],
    ['raw' => "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"ids\":[1"],
    ['raw' => "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"ids\":[1", 'hold' => true],
    ['close' => true],
    ['raw' => "HTTP/1.1 200 OK\r\nX-Long: " . str_repeat('h', 70000) . "\r\n\r\n"],
];
$f = fake_server($plan);
$url = $f[0];
$o = ['timeout' => 1];
$one = fn() => cometbox_publish('alice', 'x', $url, $o);
for ($i = 0; $i < 11; $i++) {
    show($one);
}
show(fn() => cometbox_publish_many([['queue' => 'a', 'data' => '1'], ['queue' => 'a', 'data' => '2'], ['queue' => 'a', 'data' => '3']], $url, $o));
show($one);
show($one);
for ($i = 0; $i < 9; $i++) {
    show($one);
}
fake_stop($f);
?>
--EXPECTF--
Cometbox\Exception 400/400 malformed | line 3, column 12: mismatched tag | cometbox: HTTP 400 malformed: line 3, column 12: mismatched tag
Cometbox\Exception 404/404 not_found | no such path | cometbox: HTTP 404 not_found: no such path
Cometbox\Exception 405/405 method_not_allowed | use POST | cometbox: HTTP 405 method_not_allowed: use POST
Cometbox\Exception 413/413 too_large | message 2 is over max-message-bytes | cometbox: HTTP 413 too_large: message 2 is over max-message-bytes
Cometbox\Exception 415/415 unsupported_media_type | text/plain | cometbox: HTTP 415 unsupported_media_type: text/plain
Cometbox\Exception 503/503 unavailable |  | cometbox: HTTP 503 unavailable: 
Cometbox\Exception 502/502 http_error | <html>??<body>Bad ?Gateway</body></html>?xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx | cometbox: HTTP 502 from http://127.0.0.1:%d/publish: <html>??<body>Bad ?Gateway</body></html>?xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx
Cometbox\Exception 200/200 bad_response | body is not JSON | cometbox: unexpected answer from http://127.0.0.1:%d/publish: body is not JSON
Cometbox\Exception 200/200 bad_response | expected {"ids":[...]} with 1 id | cometbox: unexpected answer from http://127.0.0.1:%d/publish: expected {"ids":[...]} with 1 id
Cometbox\Exception 200/200 bad_response | ids must be positive integers | cometbox: unexpected answer from http://127.0.0.1:%d/publish: ids must be positive integers
Cometbox\Exception 200/200 bad_response | expected {"ids":[...]} with 1 id | cometbox: unexpected answer from http://127.0.0.1:%d/publish: expected {"ids":[...]} with 1 id
no exception, got [7,8,9]
no exception, got 10
no exception, got 11
Cometbox\Exception 200/200 bad_response | bad chunked encoding | cometbox: unexpected answer from http://127.0.0.1:%d/publish: bad chunked encoding
Cometbox\Exception 0/0 bad_response | no HTTP status line | cometbox: unexpected answer from http://127.0.0.1:%d/publish: no HTTP status line
Cometbox\Exception 0/0 bad_response | answer larger than 4194304 bytes | cometbox: answer from http://127.0.0.1:%d/publish is larger than 4194304 bytes
Cometbox\Exception 0/0 bad_response | answer larger than 4194304 bytes | cometbox: answer from http://127.0.0.1:%d/publish is larger than 4194304 bytes
Cometbox\Exception 0/0 bad_response | answer larger than 4194304 bytes | cometbox: answer from http://127.0.0.1:%d/publish is larger than 4194304 bytes
Cometbox\Exception 0/0 connection_failed | the connection closed before the answer was complete | cometbox: cannot reach http://127.0.0.1:%d/publish: the connection closed before the answer was complete
Cometbox\Exception 0/0 timeout | no answer within 1 s | cometbox: no answer from http://127.0.0.1:%d/publish within 1 s
Cometbox\Exception 0/0 connection_failed | the connection closed without an answer | cometbox: cannot reach http://127.0.0.1:%d/publish: the connection closed without an answer
Cometbox\Exception 0/0 bad_response | header block too long | cometbox: unexpected answer from http://127.0.0.1:%d/publish: header block too long
