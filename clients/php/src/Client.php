<?php
// The cometbox publisher for PHP applications: posts messages to cometboxd's
// publish port (docs/PROTOCOL.md, "POST /publish") and returns their ids, and
// signs subscriber tokens for browsers (token()). Not a subscriber: browsers
// read messages from the browser port.

declare(strict_types=1);

namespace Cometbox;

use Cometbox\Internal\CurlTransport;
use Cometbox\Internal\Encoder;
use Cometbox\Internal\StreamTransport;
use Cometbox\Internal\Token;
use Cometbox\Internal\Transport;

final class Client
{
    public const VERSION = '0.1.0';

    /** Default for the "timeout" option, in seconds. */
    public const DEFAULT_TIMEOUT = 5.0;

    /** @var string base URL without trailing slash */
    private $url;
    /** @var string $url . '/publish' */
    private $endpoint;
    /** @var string|null */
    private $secret;
    /** @var string|null key of subscriber tokens; never sent anywhere */
    private $subscribeSecret;
    /** @var float */
    private $timeout;
    /** @var string "ext", "curl" or "stream" */
    private $transportName;
    /** @var Transport|null owned; null for "ext" */
    private $transport;

    /**
     * @param string $url the publish port's base URL, e.g. "http://127.0.0.1:1802"
     *                    (a path prefix is kept: ".../cometbox" posts to ".../cometbox/publish")
     * @param array{secret?:?string,timeout?:int|float,transport?:string,subscribe_secret?:?string} $options
     *        secret:    sent as "Authorization: Bearer <secret>" when not null or "";
     *        timeout:   seconds for one publish in all, connecting included (default 5);
     *        transport: "auto" (default: ext, then curl, then stream), "ext", "curl" or "stream";
     *        subscribe_secret: the daemon's subscribe-secret, to sign token()s (null or "": none).
     * @throws Exception invalid_argument for a bad URL or option
     */
    public function __construct(string $url, #[\SensitiveParameter] array $options = [])
    {
        foreach ($options as $key => $unused) {
            if (!\in_array($key, ['secret', 'timeout', 'transport', 'subscribe_secret'], true)) {
                throw Encoder::invalid('unknown option ' . Encoder::quote((string) $key)
                    . ' (allowed: "secret", "timeout", "transport", "subscribe_secret")');
            }
        }
        $this->url = self::checkUrl($url);
        $this->endpoint = $this->url . '/publish';

        $secret = $options['secret'] ?? null;
        if ($secret !== null && !\is_string($secret)) {
            throw Encoder::invalid('option "secret" must be a string or null, got ' . \get_debug_type($secret));
        }
        if ($secret !== null && $secret !== '' && \preg_match('/^[\x21-\x7E]+$/D', $secret) !== 1) {
            throw Encoder::invalid('option "secret" must be printable ASCII without spaces');
        }
        $this->secret = ($secret === '') ? null : $secret;

        // Length and content are checked by token(), so that a client that
        // only publishes is not refused for a secret it never uses.
        $subscribeSecret = $options['subscribe_secret'] ?? null;
        if ($subscribeSecret !== null && !\is_string($subscribeSecret)) {
            throw Encoder::invalid('option "subscribe_secret" must be a string or null, got '
                . \get_debug_type($subscribeSecret));
        }
        $this->subscribeSecret = ($subscribeSecret === '') ? null : $subscribeSecret;

        $timeout = $options['timeout'] ?? self::DEFAULT_TIMEOUT;
        if (!\is_int($timeout) && !\is_float($timeout)) {
            throw Encoder::invalid('option "timeout" must be a number of seconds, got ' . \get_debug_type($timeout));
        }
        if (!($timeout > 0) || $timeout > 86400) {
            throw Encoder::invalid('option "timeout" must be more than 0 and at most 86400 seconds');
        }
        $this->timeout = (float) $timeout;

        $wanted = $options['transport'] ?? 'auto';
        $this->transportName = $this->pickTransport($wanted);
        if ($this->transportName === 'curl') {
            $this->transport = new CurlTransport();
        } elseif ($this->transportName === 'stream') {
            $this->transport = new StreamTransport();
        }
    }

    public function __destruct()
    {
        $this->close();
    }

    /**
     * Publishes one text message.
     *
     * @return int the message id
     * @throws Exception invalid_argument (bad queue name, data not valid UTF-8
     *         or containing a character XML cannot carry), or a daemon or
     *         connection error
     */
    public function publish(string $queue, string $data): int
    {
        if ($this->transportName === 'ext') {
            // The extension makes the same checks with the same messages.
            return \cometbox_publish($queue, $data, $this->url, $this->extOptions());
        }
        Encoder::checkQueue($queue);
        Encoder::checkText($data);
        $xml = Encoder::document(Encoder::element($queue, $data, false));
        return $this->post($xml, 1)[0];
    }

    /**
     * Publishes one message whose data is $value as JSON (subscribers get the
     * value itself, not a string; a PHP string arrives as a text message).
     *
     * @param mixed $value anything json_encode() accepts
     * @return int the message id
     */
    public function publishJson(string $queue, $value): int
    {
        if ($this->transportName === 'ext') {
            // Encoding here as well would call a JsonSerializable twice.
            return \cometbox_publish_json($queue, $value, $this->url, $this->extOptions());
        }
        Encoder::checkQueue($queue);
        $xml = Encoder::document(Encoder::element($queue, Encoder::encodeJson($value), true));
        return $this->post($xml, 1)[0];
    }

    /**
     * Publishes a batch atomically: all messages are queued, or none.
     *
     * @param array<array{queue:string,data:mixed,json?:bool}> $messages 1 to
     *        10000 entries, each ['queue' => 'alice', 'data' => 'Hello'] for
     *        text or ['queue' => 'room', 'data' => $value, 'json' => true];
     *        keys of $messages are ignored, their order is kept
     * @return list<int> the ids, in the order of $messages
     */
    public function publishMany(array $messages): array
    {
        if ($this->transportName === 'ext') {
            return \cometbox_publish_many($messages, $this->url, $this->extOptions());
        }
        [$xml, $n] = Encoder::batch($messages);
        return $this->post($xml, $n);
    }

    /**
     * Makes a subscriber token for a daemon run with `subscribe-auth = token`
     * (docs/SECURITY.md): a browser passes it as ?token= to /poll, /stream and
     * /events of these queues until it expires. Signed locally with the
     * "subscribe_secret" option; nothing is sent. The token holds only
     * characters a URL query may carry as they are.
     *
     * @param array<string> $queues 1 to 16 distinct queue names (keys ignored, order kept)
     * @param int $ttl seconds from now until the token stops working, 1 to 31622400
     * @return string EXPIRY "." QUEUES "." SIGNATURE
     * @throws Exception invalid_argument (no or short secret, bad queue list or ttl)
     */
    public function token(array $queues, int $ttl = 3600): string
    {
        if ($this->transportName === 'ext' && \function_exists('cometbox_token')) {
            // '' rather than null: the client's own option decides, never the ini.
            return \cometbox_token($queues, $ttl, $this->subscribeSecret ?? '');
        }
        return Token::make($this->subscribeSecret, $queues, $ttl, \time());
    }

    /** The base URL given to the constructor, without trailing slash. */
    public function getUrl(): string
    {
        return $this->url;
    }

    /** The transport in use: "ext", "curl" or "stream" ("auto" resolved). */
    public function getTransport(): string
    {
        return $this->transportName;
    }

    /** Drops a kept-alive connection; the next publish opens a new one. */
    public function close(): void
    {
        if ($this->transport !== null) {
            $this->transport->close();
        }
    }

    /**
     * Posts an XML batch of $n messages and returns the ids of the answer.
     *
     * @return list<int>
     */
    private function post(string $xml, int $n): array
    {
        $answer = $this->send('POST', '/publish', 'application/xml; charset=utf-8', $xml);
        $ids = \is_array($answer) ? ($answer['ids'] ?? null) : null;
        if (!\is_array($ids) || \count($ids) !== $n || !\array_is_list($ids)) {
            throw $this->badResponse(200, 'expected {"ids":[...]} with ' . $n . ' id' . ($n === 1 ? '' : 's'));
        }
        foreach ($ids as $id) {
            if (!\is_int($id) || $id <= 0) {
                throw $this->badResponse(200, 'ids must be positive integers');
            }
        }
        return $ids;
    }

    /**
     * Sends one request to $path below the base URL. Returns the decoded JSON
     * of a 200 answer; throws Exception for anything else. Private: tests reach
     * it through reflection to send bodies the public methods never build.
     *
     * @return mixed
     */
    private function send(string $method, string $path, string $contentType, string $body)
    {
        if ($this->transport === null) {
            throw Encoder::invalid('the "ext" transport sends only what the extension builds');
        }
        $url = $this->url . $path;
        $headers = [
            'Content-Type: ' . $contentType,
            'Accept: application/json',
            'User-Agent: cometbox-php/' . self::VERSION . ' (' . $this->transportName . ')',
        ];
        if ($this->secret !== null) {
            $headers[] = 'Authorization: Bearer ' . $this->secret;
        }
        [$status, $text] = $this->transport->request($method, $url, $headers, $body, $this->timeout);
        $decoded = \json_decode($text, true, 16);
        if ($status === 200) {
            if (!\is_array($decoded)) {
                throw $this->badResponse(200, 'body is not JSON');
            }
            return $decoded;
        }
        if (\is_array($decoded) && \is_string($decoded['error'] ?? null)) {
            $code = $decoded['error'];
            $detail = \is_string($decoded['detail'] ?? null) ? $decoded['detail'] : '';
            throw new Exception(
                \sprintf('cometbox: HTTP %d %s: %s', $status, $code, $detail),
                $status,
                $code,
                $detail
            );
        }
        $detail = self::snippet($text);
        throw new Exception(
            \sprintf('cometbox: HTTP %d from %s: %s', $status, $url, $detail),
            $status,
            Exception::HTTP_ERROR,
            $detail
        );
    }

    private function badResponse(int $status, string $why): Exception
    {
        return new Exception(
            'cometbox: unexpected answer from ' . $this->endpoint . ': ' . $why,
            $status,
            Exception::BAD_RESPONSE,
            $why
        );
    }

    /** @return array{timeout:float,secret:?string} */
    private function extOptions(): array
    {
        return ['timeout' => $this->timeout, 'secret' => $this->secret];
    }

    private function pickTransport($wanted): string
    {
        $ext = \function_exists('cometbox_publish_many');
        $curl = \function_exists('curl_init');
        $https = \strncasecmp($this->url, 'https:', 6) === 0;
        switch ($wanted) {
            case 'auto':
                if ($ext && !$https) {
                    return 'ext';
                }
                if ($curl) {
                    return 'curl';
                }
                return $this->streamUsable();
            case 'ext':
                if (!$ext) {
                    throw Encoder::invalid('transport "ext" needs the cometbox extension, which is not loaded');
                }
                if ($https) {
                    throw Encoder::invalid('transport "ext" speaks plain http only');
                }
                return 'ext';
            case 'curl':
                if (!$curl) {
                    throw Encoder::invalid('transport "curl" needs the curl extension, which is not loaded');
                }
                return 'curl';
            case 'stream':
                return $this->streamUsable();
            default:
                throw Encoder::invalid('option "transport" must be "auto", "ext", "curl" or "stream"');
        }
    }

    private function streamUsable(): string
    {
        if (!\filter_var(\ini_get('allow_url_fopen'), \FILTER_VALIDATE_BOOLEAN)) {
            throw Encoder::invalid('transport "stream" needs allow_url_fopen=On (or load the curl extension)');
        }
        return 'stream';
    }

    private static function checkUrl(string $url): string
    {
        $parts = \preg_match('/^[\x21-\x7E]+$/D', $url) === 1 ? \parse_url($url) : false;
        if (
            !\is_array($parts)
            || !\in_array(\strtolower($parts['scheme'] ?? ''), ['http', 'https'], true)
            || ($parts['host'] ?? '') === ''
            || isset($parts['user']) || isset($parts['pass'])
            || isset($parts['query']) || isset($parts['fragment'])
            || \strpos($url, '?') !== false || \strpos($url, '#') !== false
        ) {
            throw Encoder::invalid('invalid URL ' . Encoder::quote($url)
                . ': expected http://HOST:PORT with an optional path');
        }
        return \rtrim($url, '/');
    }

    /** At most 200 bytes of a body, printable for an error message. */
    private static function snippet(string $text): string
    {
        $text = \trim(\substr($text, 0, 200));
        return (string) \preg_replace('/[^\x20-\x7E]/', '?', $text);
    }
}
