#!/usr/bin/env bash
# run.sh - runs the PHP client tests one way; CTest calls it (tests/php/CMakeLists.txt).
#   run.sh curl       PHPUnit, php -n with curl loaded: transports curl and stream
#   run.sh nocurl     PHPUnit, php -n WITHOUT curl (not loaded at all): "auto" must pick stream
#   run.sh ext        build clients/php-ext, its .phpt tests (make test), PHPUnit with the extension
#   run.sh valgrind   the .phpt tests under valgrind (leaks and memory errors fail)
# php -n ignores every php.ini, so the system's extension list cannot change what runs;
# PHPUnit itself needs tokenizer, dom, xmlwriter, xml and mbstring.
# Env: COMETBOXD (the daemon; default build/cometboxd/cometboxd), PHP, PHPUNIT.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
php=${PHP:-php}
phpunit=${PHPUNIT:-/usr/bin/phpunit}
base=(-n -d extension=tokenizer -d extension=dom -d extension=xmlwriter -d extension=xml -d extension=mbstring)
export PHPUNIT="$phpunit"

case "${1:-}" in
curl)
    COMETBOX_EXPECT_TRANSPORT=curl exec "$php" "${base[@]}" -d extension=curl "$phpunit" -c "$here/phpunit.xml"
    ;;
nocurl)
    COMETBOX_EXPECT_TRANSPORT=stream exec "$php" "${base[@]}" "$phpunit" -c "$here/phpunit.xml"
    ;;
ext)
    exec "$php" -n "$here/run_ext.php"
    ;;
valgrind)
    exec "$php" -n "$here/run_ext.php" --valgrind
    ;;
*)
    echo "usage: $0 curl|nocurl|ext|valgrind" >&2
    exit 2
    ;;
esac
