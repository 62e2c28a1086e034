<?php
// Shared assertions and data of the client tests. Not a test itself.

declare(strict_types=1);

namespace Cometbox\Tests;

use Cometbox\Client;
use Cometbox\Exception;

abstract class TestCase extends \PHPUnit\Framework\TestCase
{
    /**
     * Every transport this PHP can run: "curl" when the extension is loaded,
     * "stream" always, "ext" when the cometbox extension is loaded.
     *
     * @return array<string,array{string}>
     */
    public function transports(): array
    {
        $t = [];
        if (\function_exists('curl_init')) {
            $t['curl'] = ['curl'];
        }
        $t['stream'] = ['stream'];
        if (\function_exists('cometbox_publish_many')) {
            $t['ext'] = ['ext'];
        }
        return $t;
    }

    /** The transports that can send raw bodies (the ext builds its own). */
    public function rawTransports(): array
    {
        $t = $this->transports();
        unset($t['ext']);
        return $t;
    }

    protected static function queue(string $tag = 'q'): string
    {
        return $tag . '-' . \bin2hex(\random_bytes(6));
    }

    /**
     * Runs $fn, which must throw a Cometbox\Exception with exactly these
     * fields. $message null: not checked; a string starting with "/": a regex.
     */
    protected function assertThrowsCometbox(
        callable $fn,
        int $status,
        string $code,
        ?string $detail,
        ?string $message
    ): Exception {
        try {
            $fn();
        } catch (Exception $e) {
            $got = \sprintf('status %d, code %s, detail "%s", message "%s"', $e->getStatus(), $e->getErrorCode(), $e->getDetail(), $e->getMessage());
            $this->assertSame(Exception::class, \get_class($e), $got);
            $this->assertSame($status, $e->getStatus(), $got);
            $this->assertSame($status, $e->getCode(), $got);
            $this->assertSame($code, $e->getErrorCode(), $got);
            if ($detail !== null) {
                if ($detail !== '' && ($detail[0] === '/' || $detail[0] === '#')) {
                    $this->assertMatchesRegularExpression($detail, $e->getDetail(), $got);
                } else {
                    $this->assertSame($detail, $e->getDetail(), $got);
                }
            }
            if ($message !== null) {
                if ($message !== '' && ($message[0] === '/' || $message[0] === '#')) {
                    $this->assertMatchesRegularExpression($message, $e->getMessage(), $got);
                } else {
                    $this->assertSame($message, $e->getMessage(), $got);
                }
            }
            return $e;
        }
        $this->fail("expected Cometbox\\Exception ($status $code), nothing was thrown");
    }

    /** Calls the client's private raw send (tests only). */
    protected static function rawSend(Client $client, string $method, string $path, string $type, string $body)
    {
        $m = new \ReflectionMethod(Client::class, 'send');
        $m->setAccessible(true);
        return $m->invoke($client, $method, $path, $type, $body);
    }

    /**
     * Text that XML and JSON both have reasons to mangle; every string must
     * reach a subscriber byte for byte.
     *
     * @return array<string,string>
     */
    protected static function hostileStrings(): array
    {
        return [
            'markup' => '<script>alert("x")</script> & &amp; &lt; &#13; ]]> <![CDATA[x]]> <!-- c -->',
            'fake batch' => '</message><message queue="evil">pwned</message></messages><messages>',
            'quotes' => "single ' double \" backslash \\ slash / backtick `",
            'line ends' => "tab\tLF\nCR\rCRLF\r\nLFCR\n\rend",
            'lone CR' => "\r",
            'spaces' => "  leading and trailing  ",
            'whitespace only' => " \n\t\r\n ",
            'empty' => '',
            'unicode' => "h\u{E9}llo w\u{F6}rld \u{2014} \u{65E5}\u{672C}\u{8A9E} \u{1F389} \u{10FFFF} \u{FFFD} \u{2028}\u{2029} \u{FEFF}",
            'C1 and DEL' => "\u{7F}\u{80}\u{9F}",
            'json lookalike' => '{"id":1,"queue":"x","data":"y"}',
            'format strings' => '%s %n %x {{x}} ${x} \\u0000 \\n',
            'entity names' => '&lt;&gt;&amp;&quot;&apos;&#x41;&#65;&nbsp;',
            'long' => \str_repeat("<&>\"'\r\n\u{E9}", 2000),
        ];
    }
}
