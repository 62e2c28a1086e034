<?php
// PHPUnit bootstrap for the PHP client tests: the client without composer,
// plus the test helpers. See README in docs/CLIENT-PHP.md for how to run.

declare(strict_types=1);

require __DIR__ . '/../../clients/php/autoload.php';
require __DIR__ . '/support/Daemon.php';
require __DIR__ . '/support/FakeServer.php';
require __DIR__ . '/support/TestCase.php';
