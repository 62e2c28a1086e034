<?php
// The one exception class of the cometbox PHP client: daemon errors, connection
// failures, timeouts and rejected arguments. Not for control flow inside the client.
//
// The cometbox extension (clients/php-ext) defines an identical class. When the
// extension is loaded the autoloader never reaches this file; the guard below also
// keeps a direct `require` of it harmless.

declare(strict_types=1);

namespace Cometbox;

if (!\class_exists(Exception::class, false)) {
    /**
     * A failed publish.
     *
     * getStatus() (and getCode()) is the HTTP status the daemon answered, or 0
     * when no HTTP answer was involved (bad argument, connection failure, timeout).
     * getErrorCode() is the daemon's error code ("malformed", "too_large", ...)
     * or one of the client's own codes below. getDetail() is the daemon's
     * human-readable detail, or the client's explanation.
     */
    class Exception extends \RuntimeException
    {
        /** An argument was rejected before anything was sent. */
        public const INVALID_ARGUMENT = 'invalid_argument';
        /** The daemon could not be reached (refused, unresolvable, reset). */
        public const CONNECTION_FAILED = 'connection_failed';
        /** No complete answer within the client's timeout. */
        public const TIMEOUT = 'timeout';
        /** An answer that is not what PROTOCOL.md promises. */
        public const BAD_RESPONSE = 'bad_response';
        /** An HTTP error status without a cometbox error body (e.g. from a proxy). */
        public const HTTP_ERROR = 'http_error';

        private int $status = 0;
        private string $errorCode = '';
        private string $detail = '';

        public function __construct(
            string $message,
            int $status = 0,
            string $errorCode = '',
            string $detail = '',
            ?\Throwable $previous = null
        ) {
            parent::__construct($message, $status, $previous);
            $this->status = $status;
            $this->errorCode = $errorCode;
            $this->detail = $detail;
        }

        /** The HTTP status of the daemon's answer, 0 when there was none. */
        public function getStatus(): int
        {
            return $this->status;
        }

        /** The daemon's error code, or one of this class's constants. */
        public function getErrorCode(): string
        {
            return $this->errorCode;
        }

        /** The daemon's detail text, or the client's explanation. */
        public function getDetail(): string
        {
            return $this->detail;
        }
    }
}
