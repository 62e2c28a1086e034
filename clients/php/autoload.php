<?php
// Loads the cometbox PHP client without composer: `require 'path/to/autoload.php';`.
// Registers a PSR-4 autoloader for Cometbox\ on src/; loads nothing eagerly.

declare(strict_types=1);

\spl_autoload_register(static function (string $class): void {
    if (\strncmp($class, 'Cometbox\\', 9) !== 0) {
        return;
    }
    $file = __DIR__ . '/src/' . \str_replace('\\', '/', \substr($class, 9)) . '.php';
    if (\is_file($file)) {
        require $file;
    }
});
