--TEST--
cometbox: publish, publish_json and publish_many against the real daemon
--EXTENSIONS--
cometbox
--SKIPIF--
<?php require __DIR__ . '/cometbox.inc'; skip_without('COMETBOX_URL', 'COMETBOX_BROWSER_URL'); ?>
--FILE--
<?php
require __DIR__ . '/cometbox.inc';
$url = env_url('COMETBOX_URL');
$browser = env_url('COMETBOX_BROWSER_URL');
$q = queue();
$r = queue('r');

$id1 = cometbox_publish($q, 'Hello', $url);
$id2 = cometbox_publish_json($q, ['x' => 1, 'list' => [1, 2], 'ok' => true, 'half' => 0.5, 'n' => null], $url);
$id3 = cometbox_publish_json($r, 'a JSON string is a text message', $url, ['timeout' => 3]);
$ids = cometbox_publish_many([
    'k1' => ['queue' => $q, 'data' => 'one'],
    'k2' => ['queue' => $r, 'data' => [1, 'two'], 'json' => true],
    'k3' => ['queue' => $q, 'data' => 'three', 'json' => false],
], $url, ['secret' => 'ignored-by-the-daemon']);

var_dump(is_int($id1), $id1 < $id2, $id2 < $id3, count($ids), array_keys($ids), $id3 < $ids[0], $ids[0] < $ids[1], $ids[1] < $ids[2]);
var_dump($id1 < 2 ** 53);
$got = poll($browser, "$q,$r");
$ok = $got === [
    ['id' => $id1, 'queue' => $q, 'data' => 'Hello'],
    ['id' => $id2, 'queue' => $q, 'data' => ['x' => 1, 'list' => [1, 2], 'ok' => true, 'half' => 0.5, 'n' => null]],
    ['id' => $id3, 'queue' => $r, 'data' => 'a JSON string is a text message'],
    ['id' => $ids[0], 'queue' => $q, 'data' => 'one'],
    ['id' => $ids[1], 'queue' => $r, 'data' => [1, 'two']],
    ['id' => $ids[2], 'queue' => $q, 'data' => 'three'],
];
var_dump($ok);
if (!$ok) {
    var_dump($got);
}

// The default URL comes from cometbox.url.
ini_set('cometbox.url', $url . '/');
$id4 = cometbox_publish($q, 'via ini');
var_dump(poll($browser, $q)[4] === ['id' => $id4, 'queue' => $q, 'data' => 'via ini']);

// A batch of 2000.
$many = [];
for ($i = 0; $i < 2000; $i++) {
    $many[] = ['queue' => $r, 'data' => "m$i"];
}
$big = cometbox_publish_many($many);
$sorted = $big;
sort($sorted);
var_dump(count($big), $sorted === $big, count(array_unique($big)));
?>
--EXPECT--
bool(true)
bool(true)
bool(true)
int(3)
array(3) {
  [0]=>
  int(0)
  [1]=>
  int(1)
  [2]=>
  int(2)
}
bool(true)
bool(true)
bool(true)
bool(true)
bool(true)
bool(true)
int(2000)
bool(true)
int(2000)
