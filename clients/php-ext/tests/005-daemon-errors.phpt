--TEST--
cometbox: errors the real daemon answers (404, 413) and atomic batches
--EXTENSIONS--
cometbox
--SKIPIF--
<?php require __DIR__ . '/cometbox.inc'; skip_without('COMETBOX_URL', 'COMETBOX_SMALL_URL', 'COMETBOX_SMALL_BROWSER_URL'); ?>
--FILE--
<?php
require __DIR__ . '/cometbox.inc';
$url = env_url('COMETBOX_URL');
$small = env_url('COMETBOX_SMALL_URL');
$smallBrowser = env_url('COMETBOX_SMALL_BROWSER_URL');

show(fn() => cometbox_publish('alice', 'x', "$url/nope"));

$q = queue();
$id = cometbox_publish($q, str_repeat('a', 64), $small);
var_dump(poll($smallBrowser, $q) === [['id' => $id, 'queue' => $q, 'data' => str_repeat('a', 64)]]);

show(fn() => cometbox_publish($q, str_repeat('a', 65), $small));
$a = queue('atomic');
show(fn() => cometbox_publish_many([['queue' => $a, 'data' => 'fits'], ['queue' => $a, 'data' => str_repeat('b', 65)]], $small));
show(fn() => cometbox_publish_many(array_fill(0, 100, ['queue' => $a, 'data' => str_repeat('c', 50)]), $small));
var_dump(poll($smallBrowser, $a));
?>
--EXPECTF--
Cometbox\Exception 404/404 not_found | %s | cometbox: HTTP 404 not_found: %s
bool(true)
Cometbox\Exception 413/413 too_large | %s | cometbox: HTTP 413 too_large: %s
Cometbox\Exception 413/413 too_large | %s | cometbox: HTTP 413 too_large: %s
Cometbox\Exception 413/413 too_large | %s | cometbox: HTTP 413 too_large: %s
array(0) {
}
