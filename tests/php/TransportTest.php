<?php
// Which transport "auto" picks in this PHP, and which Cometbox\Exception
// class is in force (the extension's when it is loaded, else the library's).
// The CTest drivers set COMETBOX_EXPECT_TRANSPORT so that a run meant to be
// without curl fails if curl is loaded after all.

declare(strict_types=1);

namespace Cometbox\Tests;

use Cometbox\Client;
use Cometbox\Exception;

final class TransportTest extends TestCase
{
    public function testAutoPicksTheExpectedTransport(): void
    {
        $expected = \getenv('COMETBOX_EXPECT_TRANSPORT');
        if ($expected === false || $expected === '') {
            $expected = \function_exists('cometbox_publish_many') ? 'ext' : (\function_exists('curl_init') ? 'curl' : 'stream');
        }
        $this->assertSame($expected, (new Client('http://127.0.0.1:1802'))->getTransport());
        $this->assertSame($expected, (new Client('http://127.0.0.1:1802', ['transport' => 'auto']))->getTransport());
        if ($expected === 'stream') {
            $this->assertFalse(\extension_loaded('curl'), 'this run is meant to be without curl');
            $this->assertFalse(\function_exists('curl_init'));
        }
        if ($expected === 'ext') {
            $this->assertTrue(\extension_loaded('cometbox'));
        }
        // https never goes to the extension.
        $this->assertNotSame('ext', (new Client('https://127.0.0.1:1802'))->getTransport());
    }

    public function testExceptionClassInForce(): void
    {
        $class = new \ReflectionClass(Exception::class);
        if (\extension_loaded('cometbox')) {
            $this->assertTrue($class->isInternal(), 'the extension defines Cometbox\Exception');
            $this->assertSame('cometbox', $class->getExtensionName());
        } else {
            $this->assertFalse($class->isInternal());
            $this->assertSame(\realpath(__DIR__ . '/../../clients/php/src/Exception.php'), $class->getFileName());
        }
        // Requiring the library's file anyway must not redeclare the class.
        require_once __DIR__ . '/../../clients/php/src/Exception.php';
        $this->assertSame($class->isInternal(), (new \ReflectionClass(Exception::class))->isInternal());
    }

    public function testExceptionApiIsTheSameWhicheverClassIsInForce(): void
    {
        $prev = new \LogicException('cause');
        $e = new Exception('cometbox: HTTP 413 too_large: big', 413, 'too_large', 'big', $prev);
        $this->assertInstanceOf(\RuntimeException::class, $e);
        $this->assertSame('cometbox: HTTP 413 too_large: big', $e->getMessage());
        $this->assertSame(413, $e->getCode());
        $this->assertSame(413, $e->getStatus());
        $this->assertSame('too_large', $e->getErrorCode());
        $this->assertSame('big', $e->getDetail());
        $this->assertSame($prev, $e->getPrevious());

        $plain = new Exception('m');
        $this->assertSame([0, 0, '', '', null], [$plain->getCode(), $plain->getStatus(), $plain->getErrorCode(), $plain->getDetail(), $plain->getPrevious()]);

        $this->assertSame('invalid_argument', Exception::INVALID_ARGUMENT);
        $this->assertSame('connection_failed', Exception::CONNECTION_FAILED);
        $this->assertSame('timeout', Exception::TIMEOUT);
        $this->assertSame('bad_response', Exception::BAD_RESPONSE);
        $this->assertSame('http_error', Exception::HTTP_ERROR);

        $ctor = (new \ReflectionClass(Exception::class))->getConstructor();
        $params = \array_map(static function (\ReflectionParameter $p): string {
            return $p->getType() . ' $' . $p->getName();
        }, $ctor->getParameters());
        $this->assertSame(['string $message', 'int $status', 'string $errorCode', 'string $detail', '?Throwable $previous'], $params);
    }

    public function testUrlIsKeptWithoutTrailingSlash(): void
    {
        $this->assertSame('http://127.0.0.1:1802', (new Client('http://127.0.0.1:1802/'))->getUrl());
        $this->assertSame('http://[::1]:1802/x', (new Client('http://[::1]:1802/x//', ['transport' => 'stream']))->getUrl());
    }
}
