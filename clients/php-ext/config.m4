dnl config.m4 for the cometbox PHP extension (clients/php-ext).
dnl Plain sockets, no libcurl: nothing to detect beyond PHP itself.

PHP_ARG_ENABLE([cometbox],
  [whether to enable the cometbox publisher],
  [AS_HELP_STRING([--enable-cometbox], [Enable the cometbox publisher extension])],
  [yes])

if test "$PHP_COMETBOX" != "no"; then
  PHP_NEW_EXTENSION(cometbox,
    [cometbox.c cometbox_encode.c cometbox_http.c cometbox_token.c],
    $ext_shared,, [-DZEND_ENABLE_STATIC_TSRMLS_CACHE=1 -Wall -Wextra -Wno-unused-parameter])
  PHP_ADD_EXTENSION_DEP(cometbox, json)
  PHP_ADD_EXTENSION_DEP(cometbox, hash)
fi
