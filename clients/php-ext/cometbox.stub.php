<?php

/**
 * Stub of the cometbox extension: the source of cometbox_arginfo.h.
 * Regenerate with: php /usr/lib/php/20220829/build/gen_stub.php cometbox.stub.php
 *
 * @generate-class-entries
 */

namespace {
    /* $options: ['timeout' => seconds, 'secret' => ?string]; see README.md */
    function cometbox_publish(string $queue, string $data, ?string $url = null, ?array $options = null): int {}

    function cometbox_publish_json(string $queue, mixed $value, ?string $url = null, ?array $options = null): int {}

    function cometbox_publish_many(array $messages, ?string $url = null, ?array $options = null): array {}

    /* $secret null: the ini cometbox.subscribe_secret; see README.md */
    function cometbox_token(array $queues, int $ttl = 3600, #[\SensitiveParameter] ?string $secret = null): string {}
}

namespace Cometbox {
    class Exception extends \RuntimeException
    {
        /** @var string */
        public const INVALID_ARGUMENT = "invalid_argument";
        /** @var string */
        public const CONNECTION_FAILED = "connection_failed";
        /** @var string */
        public const TIMEOUT = "timeout";
        /** @var string */
        public const BAD_RESPONSE = "bad_response";
        /** @var string */
        public const HTTP_ERROR = "http_error";

        private int $status = 0;
        private string $errorCode = "";
        private string $detail = "";

        public function __construct(
            string $message,
            int $status = 0,
            string $errorCode = "",
            string $detail = "",
            ?\Throwable $previous = null
        ) {}

        public function getStatus(): int {}

        public function getErrorCode(): string {}

        public function getDetail(): string {}
    }
}
