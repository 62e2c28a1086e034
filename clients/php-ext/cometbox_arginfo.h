/* This is a generated file, edit the .stub.php file instead.
 * Stub hash: f2b688048a5a494f78c6969033453d5103d01024 */

ZEND_BEGIN_ARG_WITH_RETURN_TYPE_INFO_EX(arginfo_cometbox_publish, 0, 2, IS_LONG, 0)
	ZEND_ARG_TYPE_INFO(0, queue, IS_STRING, 0)
	ZEND_ARG_TYPE_INFO(0, data, IS_STRING, 0)
	ZEND_ARG_TYPE_INFO_WITH_DEFAULT_VALUE(0, url, IS_STRING, 1, "null")
	ZEND_ARG_TYPE_INFO_WITH_DEFAULT_VALUE(0, options, IS_ARRAY, 1, "null")
ZEND_END_ARG_INFO()

ZEND_BEGIN_ARG_WITH_RETURN_TYPE_INFO_EX(arginfo_cometbox_publish_json, 0, 2, IS_LONG, 0)
	ZEND_ARG_TYPE_INFO(0, queue, IS_STRING, 0)
	ZEND_ARG_TYPE_INFO(0, value, IS_MIXED, 0)
	ZEND_ARG_TYPE_INFO_WITH_DEFAULT_VALUE(0, url, IS_STRING, 1, "null")
	ZEND_ARG_TYPE_INFO_WITH_DEFAULT_VALUE(0, options, IS_ARRAY, 1, "null")
ZEND_END_ARG_INFO()

ZEND_BEGIN_ARG_WITH_RETURN_TYPE_INFO_EX(arginfo_cometbox_publish_many, 0, 1, IS_ARRAY, 0)
	ZEND_ARG_TYPE_INFO(0, messages, IS_ARRAY, 0)
	ZEND_ARG_TYPE_INFO_WITH_DEFAULT_VALUE(0, url, IS_STRING, 1, "null")
	ZEND_ARG_TYPE_INFO_WITH_DEFAULT_VALUE(0, options, IS_ARRAY, 1, "null")
ZEND_END_ARG_INFO()

ZEND_BEGIN_ARG_WITH_RETURN_TYPE_INFO_EX(arginfo_cometbox_token, 0, 1, IS_STRING, 0)
	ZEND_ARG_TYPE_INFO(0, queues, IS_ARRAY, 0)
	ZEND_ARG_TYPE_INFO_WITH_DEFAULT_VALUE(0, ttl, IS_LONG, 0, "3600")
	ZEND_ARG_TYPE_INFO_WITH_DEFAULT_VALUE(0, secret, IS_STRING, 1, "null")
ZEND_END_ARG_INFO()

ZEND_BEGIN_ARG_INFO_EX(arginfo_class_Cometbox_Exception___construct, 0, 0, 1)
	ZEND_ARG_TYPE_INFO(0, message, IS_STRING, 0)
	ZEND_ARG_TYPE_INFO_WITH_DEFAULT_VALUE(0, status, IS_LONG, 0, "0")
	ZEND_ARG_TYPE_INFO_WITH_DEFAULT_VALUE(0, errorCode, IS_STRING, 0, "\"\"")
	ZEND_ARG_TYPE_INFO_WITH_DEFAULT_VALUE(0, detail, IS_STRING, 0, "\"\"")
	ZEND_ARG_OBJ_INFO_WITH_DEFAULT_VALUE(0, previous, Throwable, 1, "null")
ZEND_END_ARG_INFO()

ZEND_BEGIN_ARG_WITH_RETURN_TYPE_INFO_EX(arginfo_class_Cometbox_Exception_getStatus, 0, 0, IS_LONG, 0)
ZEND_END_ARG_INFO()

ZEND_BEGIN_ARG_WITH_RETURN_TYPE_INFO_EX(arginfo_class_Cometbox_Exception_getErrorCode, 0, 0, IS_STRING, 0)
ZEND_END_ARG_INFO()

#define arginfo_class_Cometbox_Exception_getDetail arginfo_class_Cometbox_Exception_getErrorCode


ZEND_FUNCTION(cometbox_publish);
ZEND_FUNCTION(cometbox_publish_json);
ZEND_FUNCTION(cometbox_publish_many);
ZEND_FUNCTION(cometbox_token);
ZEND_METHOD(Cometbox_Exception, __construct);
ZEND_METHOD(Cometbox_Exception, getStatus);
ZEND_METHOD(Cometbox_Exception, getErrorCode);
ZEND_METHOD(Cometbox_Exception, getDetail);


static const zend_function_entry ext_functions[] = {
	ZEND_FE(cometbox_publish, arginfo_cometbox_publish)
	ZEND_FE(cometbox_publish_json, arginfo_cometbox_publish_json)
	ZEND_FE(cometbox_publish_many, arginfo_cometbox_publish_many)
	ZEND_FE(cometbox_token, arginfo_cometbox_token)
	ZEND_FE_END
};


static const zend_function_entry class_Cometbox_Exception_methods[] = {
	ZEND_ME(Cometbox_Exception, __construct, arginfo_class_Cometbox_Exception___construct, ZEND_ACC_PUBLIC)
	ZEND_ME(Cometbox_Exception, getStatus, arginfo_class_Cometbox_Exception_getStatus, ZEND_ACC_PUBLIC)
	ZEND_ME(Cometbox_Exception, getErrorCode, arginfo_class_Cometbox_Exception_getErrorCode, ZEND_ACC_PUBLIC)
	ZEND_ME(Cometbox_Exception, getDetail, arginfo_class_Cometbox_Exception_getDetail, ZEND_ACC_PUBLIC)
	ZEND_FE_END
};

static void register_cometbox_symbols(int module_number)
{

	zend_add_parameter_attribute(zend_hash_str_find_ptr(CG(function_table), "cometbox_token", sizeof("cometbox_token") - 1), 2, ZSTR_KNOWN(ZEND_STR_SENSITIVEPARAMETER), 0);
}

static zend_class_entry *register_class_Cometbox_Exception(zend_class_entry *class_entry_RuntimeException)
{
	zend_class_entry ce, *class_entry;

	INIT_NS_CLASS_ENTRY(ce, "Cometbox", "Exception", class_Cometbox_Exception_methods);
	class_entry = zend_register_internal_class_ex(&ce, class_entry_RuntimeException);

	zval const_INVALID_ARGUMENT_value;
	zend_string *const_INVALID_ARGUMENT_value_str = zend_string_init("invalid_argument", strlen("invalid_argument"), 1);
	ZVAL_STR(&const_INVALID_ARGUMENT_value, const_INVALID_ARGUMENT_value_str);
	zend_string *const_INVALID_ARGUMENT_name = zend_string_init_interned("INVALID_ARGUMENT", sizeof("INVALID_ARGUMENT") - 1, 1);
	zend_declare_class_constant_ex(class_entry, const_INVALID_ARGUMENT_name, &const_INVALID_ARGUMENT_value, ZEND_ACC_PUBLIC, NULL);
	zend_string_release(const_INVALID_ARGUMENT_name);

	zval const_CONNECTION_FAILED_value;
	zend_string *const_CONNECTION_FAILED_value_str = zend_string_init("connection_failed", strlen("connection_failed"), 1);
	ZVAL_STR(&const_CONNECTION_FAILED_value, const_CONNECTION_FAILED_value_str);
	zend_string *const_CONNECTION_FAILED_name = zend_string_init_interned("CONNECTION_FAILED", sizeof("CONNECTION_FAILED") - 1, 1);
	zend_declare_class_constant_ex(class_entry, const_CONNECTION_FAILED_name, &const_CONNECTION_FAILED_value, ZEND_ACC_PUBLIC, NULL);
	zend_string_release(const_CONNECTION_FAILED_name);

	zval const_TIMEOUT_value;
	zend_string *const_TIMEOUT_value_str = zend_string_init("timeout", strlen("timeout"), 1);
	ZVAL_STR(&const_TIMEOUT_value, const_TIMEOUT_value_str);
	zend_string *const_TIMEOUT_name = zend_string_init_interned("TIMEOUT", sizeof("TIMEOUT") - 1, 1);
	zend_declare_class_constant_ex(class_entry, const_TIMEOUT_name, &const_TIMEOUT_value, ZEND_ACC_PUBLIC, NULL);
	zend_string_release(const_TIMEOUT_name);

	zval const_BAD_RESPONSE_value;
	zend_string *const_BAD_RESPONSE_value_str = zend_string_init("bad_response", strlen("bad_response"), 1);
	ZVAL_STR(&const_BAD_RESPONSE_value, const_BAD_RESPONSE_value_str);
	zend_string *const_BAD_RESPONSE_name = zend_string_init_interned("BAD_RESPONSE", sizeof("BAD_RESPONSE") - 1, 1);
	zend_declare_class_constant_ex(class_entry, const_BAD_RESPONSE_name, &const_BAD_RESPONSE_value, ZEND_ACC_PUBLIC, NULL);
	zend_string_release(const_BAD_RESPONSE_name);

	zval const_HTTP_ERROR_value;
	zend_string *const_HTTP_ERROR_value_str = zend_string_init("http_error", strlen("http_error"), 1);
	ZVAL_STR(&const_HTTP_ERROR_value, const_HTTP_ERROR_value_str);
	zend_string *const_HTTP_ERROR_name = zend_string_init_interned("HTTP_ERROR", sizeof("HTTP_ERROR") - 1, 1);
	zend_declare_class_constant_ex(class_entry, const_HTTP_ERROR_name, &const_HTTP_ERROR_value, ZEND_ACC_PUBLIC, NULL);
	zend_string_release(const_HTTP_ERROR_name);

	zval property_status_default_value;
	ZVAL_LONG(&property_status_default_value, 0);
	zend_string *property_status_name = zend_string_init("status", sizeof("status") - 1, 1);
	zend_declare_typed_property(class_entry, property_status_name, &property_status_default_value, ZEND_ACC_PRIVATE, NULL, (zend_type) ZEND_TYPE_INIT_MASK(MAY_BE_LONG));
	zend_string_release(property_status_name);

	zval property_errorCode_default_value;
	ZVAL_EMPTY_STRING(&property_errorCode_default_value);
	zend_string *property_errorCode_name = zend_string_init("errorCode", sizeof("errorCode") - 1, 1);
	zend_declare_typed_property(class_entry, property_errorCode_name, &property_errorCode_default_value, ZEND_ACC_PRIVATE, NULL, (zend_type) ZEND_TYPE_INIT_MASK(MAY_BE_STRING));
	zend_string_release(property_errorCode_name);

	zval property_detail_default_value;
	ZVAL_EMPTY_STRING(&property_detail_default_value);
	zend_string *property_detail_name = zend_string_init("detail", sizeof("detail") - 1, 1);
	zend_declare_typed_property(class_entry, property_detail_name, &property_detail_default_value, ZEND_ACC_PRIVATE, NULL, (zend_type) ZEND_TYPE_INIT_MASK(MAY_BE_STRING));
	zend_string_release(property_detail_name);

	return class_entry;
}
