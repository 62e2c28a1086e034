--TEST--
cometbox: hostile text reaches a subscriber byte for byte
--EXTENSIONS--
cometbox
--SKIPIF--
<?php require __DIR__ . '/cometbox.inc'; skip_without('COMETBOX_URL', 'COMETBOX_BROWSER_URL'); ?>
--FILE--
<?php
require __DIR__ . '/cometbox.inc';
$url = env_url('COMETBOX_URL');
$browser = env_url('COMETBOX_BROWSER_URL');
$texts = [
    'markup' => '<script>alert("x")</script> & &amp; &lt; &#13; ]]> <![CDATA[x]]> <!-- c -->',
    'fake batch' => '</message><message queue="evil">pwned</message></messages><messages>',
    'quotes' => "single ' double \" backslash \\ slash /",
    'line ends' => "tab\tLF\nCR\rCRLF\r\nLFCR\n\rend",
    'lone CR' => "\r",
    'spaces' => "  leading and trailing  ",
    'whitespace only' => " \n\t\r\n ",
    'empty' => '',
    'unicode' => "h\u{E9}llo \u{65E5}\u{672C} \u{1F389} \u{10FFFF} \u{FFFD} \u{2028} \u{FEFF}",
    'C1 and DEL' => "\u{7F}\u{80}\u{9F}",
    'entities' => '&lt;&gt;&amp;&quot;&apos;&#x41;&#65;&nbsp;',
    'long' => str_repeat("<&>\"'\r\n\u{E9}", 2000),
];
$q = queue('one');
$expected = [];
foreach ($texts as $name => $t) {
    $expected[] = ['id' => cometbox_publish($q, $t, $url), 'queue' => $q, 'data' => $t];
}
$got = poll($browser, $q);
foreach (array_keys($texts) as $i => $name) {
    echo $name, ': ', ($got[$i] ?? null) === $expected[$i] ? 'ok' : 'MISMATCH ' . json_encode($got[$i] ?? null), "\n";
}

$b = queue('batch');
$batch = [];
foreach ($texts as $t) {
    $batch[] = ['queue' => $b, 'data' => $t];
}
$ids = cometbox_publish_many($batch, $url);
$expected = [];
foreach (array_values($texts) as $i => $t) {
    $expected[] = ['id' => $ids[$i], 'queue' => $b, 'data' => $t];
}
var_dump(poll($browser, $b) === $expected);

$j = queue('json');
$value = ['t' => "<&>\"'\r\n\u{1F389}", 'ctrl' => "\x01\x1F", 'slash' => 'a/b'];
$id = cometbox_publish_json($j, $value, $url);
var_dump(poll($browser, $j) === [['id' => $id, 'queue' => $j, 'data' => $value]]);
?>
--EXPECT--
markup: ok
fake batch: ok
quotes: ok
line ends: ok
lone CR: ok
spaces: ok
whitespace only: ok
empty: ok
unicode: ok
C1 and DEL: ok
entities: ok
long: ok
bool(true)
bool(true)
