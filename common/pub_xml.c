/* pub_xml.c - the XML form of a publish body, read with expat.
 * Accepts <messages><message queue=..>..</message>..</messages>, a lone
 * <message>, and the original cometbox <Request> form. Refuses DOCTYPE and
 * entity declarations (so no external entities and no entity expansion)
 * and nesting deeper than CBX_XML_DEPTH_MAX. */
#include "pub.h"

#include <expat.h>
#include <pthread.h>
#include <sys/random.h>
#include <time.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum root { ROOT_NONE, ROOT_MESSAGES, ROOT_MESSAGE, ROOT_REQUEST };
enum field { F_NONE, F_COMMAND, F_USER, F_MESSAGE, F_COUNT };
static const char *const field_names[F_COUNT] = { NULL, "Command", "User", "Message" };

struct text {
    char *s;
    size_t len, cap;
};

struct xml_state {
    XML_Parser parser;
    struct cbx_pub_batch *batch;
    const struct cbx_pub_limits *lim;
    enum root root;
    int depth;
    bool failed;
    enum cbx_err err;
    char *detail;
    size_t detail_len;
    size_t nth;         /* the message being read, counting from 1 (the <Request> form is 1) */
    /* the <message> being read */
    bool in_message;
    bool is_json;
    char queue[CBX_QNAME_MAX + 1];
    size_t queue_len;
    struct text text;
    /* the <Request> form */
    enum field field;
    struct text fields[F_COUNT];
    bool seen[F_COUNT];
};

static void fail(struct xml_state *st, enum cbx_err err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(struct xml_state *st, enum cbx_err err, const char *fmt, ...)
{
    char why[256];
    va_list ap;

    if (st->failed)
        return;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    /* a size refusal is about a whole message, not a spot in the text: it names the message */
    if (err == CBX_ERR_TOO_LARGE)
        snprintf(st->detail, st->detail_len, "message %zu: %s", st->nth, why);
    else
        snprintf(st->detail, st->detail_len, "line %lu, column %lu: %s",
                 (unsigned long)XML_GetCurrentLineNumber(st->parser),
                 (unsigned long)XML_GetCurrentColumnNumber(st->parser) + 1, why);
    st->failed = true;
    st->err = err;
    XML_StopParser(st->parser, XML_FALSE);
}

static bool text_append(struct xml_state *st, struct text *t, const char *s, size_t len)
{
    if (t->len + len > st->lim->max_message_bytes) {
        if (st->in_message)
            fail(st, CBX_ERR_TOO_LARGE, "data for \"%s\" has more than max-message-bytes (%zu)", st->queue,
                 st->lim->max_message_bytes);
        else
            fail(st, CBX_ERR_TOO_LARGE, "<%s> has more than max-message-bytes (%zu)", field_names[st->field],
                 st->lim->max_message_bytes);
        return false;
    }
    if (t->len + len + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 64;
        while (cap < t->len + len + 1)
            cap *= 2;
        char *n = realloc(t->s, cap);
        if (n == NULL) {
            fail(st, CBX_ERR_NOMEM, "out of memory");
            return false;
        }
        t->s = n;
        t->cap = cap;
    }
    memcpy(t->s + t->len, s, len);
    t->len += len;
    t->s[t->len] = '\0';
    return true;
}

static void begin_message(struct xml_state *st, const XML_Char **attrs)
{
    bool have_queue = false;

    st->in_message = true;
    st->is_json = false;
    st->text.len = 0;
    st->nth++;
    st->queue[0] = '\0';
    for (int i = 0; attrs[i] != NULL; i += 2) {
        const char *name = attrs[i], *value = attrs[i + 1];
        if (strcmp(name, "queue") == 0) {
            size_t len = strlen(value);
            if (!cbx_qname_valid(value, len)) {
                fail(st, CBX_ERR_INVALID, "bad queue name \"%.*s\": use 1-%d letters, digits or ._:@-",
                     (int)(len > 140 ? 140 : len), value, CBX_QNAME_MAX);
                return;
            }
            memcpy(st->queue, value, len + 1);
            st->queue_len = len;
            have_queue = true;
        } else if (strcmp(name, "type") == 0) {
            if (strcmp(value, "json") == 0)
                st->is_json = true;
            else if (strcmp(value, "text") != 0) {
                fail(st, CBX_ERR_INVALID, "type must be \"text\" or \"json\", not \"%.64s\"", value);
                return;
            }
        } else {
            fail(st, CBX_ERR_INVALID, "unknown attribute \"%.64s\" on <message>", name);
            return;
        }
    }
    if (!have_queue)
        fail(st, CBX_ERR_INVALID, "<message> needs a queue attribute");
}

static void add_item(struct xml_state *st, const char *queue, size_t queue_len, const char *data,
                     size_t len, bool is_json)
{
    char why[256];
    enum cbx_err rc;

    if (is_json) {
        size_t clen;
        char *compact = cbx_json_compact(data, len, &clen, why, sizeof why);
        if (compact == NULL) {
            fail(st, CBX_ERR_INVALID, "type=\"json\" message: %s", why);
            return;
        }
        rc = cbx_pub_batch_add(st->batch, queue, queue_len, compact, clen, true, st->lim, why, sizeof why);
        free(compact);
    } else {
        rc = cbx_pub_batch_add(st->batch, queue, queue_len, data ? data : "", len, false, st->lim, why,
                               sizeof why);
    }
    if (rc != CBX_OK)
        fail(st, rc, "%s", why);
}

static void XMLCALL on_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
    struct xml_state *st = ud;

    if (st->failed)
        return;
    if (++st->depth > CBX_XML_DEPTH_MAX) {
        fail(st, CBX_ERR_INVALID, "elements nested deeper than %d", CBX_XML_DEPTH_MAX);
        return;
    }
    if (st->depth == 1) {
        if (strcmp(name, "messages") == 0) {
            st->root = ROOT_MESSAGES;
            if (attrs[0] != NULL)
                fail(st, CBX_ERR_INVALID, "unknown attribute \"%.64s\" on <messages>", attrs[0]);
        } else if (strcmp(name, "message") == 0) {
            st->root = ROOT_MESSAGE;
            begin_message(st, attrs);
        } else if (strcmp(name, "Request") == 0) {
            st->root = ROOT_REQUEST;
            st->nth = 1;
        } else {
            fail(st, CBX_ERR_INVALID, "unknown root element <%.64s>: expected <messages>, <message> or <Request>",
                 name);
        }
        return;
    }
    if (st->depth == 2 && st->root == ROOT_MESSAGES && strcmp(name, "message") == 0) {
        begin_message(st, attrs);
        return;
    }
    if (st->depth == 2 && st->root == ROOT_REQUEST) {
        for (int f = F_COMMAND; f < F_COUNT; f++) {
            if (strcmp(name, field_names[f]) == 0) {
                if (st->seen[f]) {
                    fail(st, CBX_ERR_INVALID, "<%s> given twice", field_names[f]);
                    return;
                }
                st->seen[f] = true;
                st->field = (enum field)f;
                return;
            }
        }
        fail(st, CBX_ERR_INVALID, "unknown element <%.64s> in <Request>", name);
        return;
    }
    if (st->in_message || st->field != F_NONE)
        fail(st, CBX_ERR_INVALID, "<%.64s> inside a message: a message holds text only", name);
    else
        fail(st, CBX_ERR_INVALID, "unexpected element <%.64s>", name);
}

static void finish_request(struct xml_state *st)
{
    for (int f = F_COMMAND; f < F_COUNT; f++) {
        if (!st->seen[f]) {
            fail(st, CBX_ERR_INVALID, "<Request> needs <%s>", field_names[f]);
            return;
        }
    }
    if (st->fields[F_COMMAND].len != 5 || memcmp(st->fields[F_COMMAND].s, "Queue", 5) != 0) {
        fail(st, CBX_ERR_INVALID, "unknown <Command> \"%.64s\": only Queue is supported",
             st->fields[F_COMMAND].s ? st->fields[F_COMMAND].s : "");
        return;
    }
    add_item(st, st->fields[F_USER].s ? st->fields[F_USER].s : "", st->fields[F_USER].len,
             st->fields[F_MESSAGE].s, st->fields[F_MESSAGE].len, false);
}

static void XMLCALL on_end(void *ud, const XML_Char *name)
{
    struct xml_state *st = ud;

    (void)name;
    if (st->failed)
        return;
    if (st->in_message && st->depth == (st->root == ROOT_MESSAGE ? 1 : 2)) {
        st->in_message = false;
        add_item(st, st->queue, st->queue_len, st->text.s, st->text.len, st->is_json);
    } else if (st->root == ROOT_REQUEST && st->depth == 2) {
        st->field = F_NONE;
    } else if (st->root == ROOT_REQUEST && st->depth == 1) {
        finish_request(st);
    }
    st->depth--;
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int len)
{
    struct xml_state *st = ud;

    if (st->failed)
        return;
    if (st->in_message) {
        text_append(st, &st->text, s, (size_t)len);
    } else if (st->field != F_NONE) {
        text_append(st, &st->fields[st->field], s, (size_t)len);
    } else {
        for (int i = 0; i < len; i++) {
            if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n') {
                fail(st, CBX_ERR_INVALID, "text outside <message>");
                return;
            }
        }
    }
}

static void XMLCALL on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
                               const XML_Char *pubid, int has_internal)
{
    (void)name, (void)sysid, (void)pubid, (void)has_internal;
    fail(ud, CBX_ERR_INVALID, "DOCTYPE declarations are not allowed");
}

static void XMLCALL on_entity_decl(void *ud, const XML_Char *name, int is_param, const XML_Char *value,
                                   int value_len, const XML_Char *base, const XML_Char *sysid,
                                   const XML_Char *pubid, const XML_Char *notation)
{
    (void)name, (void)is_param, (void)value, (void)value_len, (void)base, (void)sysid, (void)pubid,
        (void)notation;
    fail(ud, CBX_ERR_INVALID, "entity declarations are not allowed");
}

static int XMLCALL on_external_entity(XML_Parser p, const XML_Char *context, const XML_Char *base,
                                      const XML_Char *sysid, const XML_Char *pubid)
{
    (void)p, (void)context, (void)base, (void)sysid, (void)pubid;
    return XML_STATUS_ERROR; /* never load anything */
}

/* One parser per thread, reset between bodies: creating a parser per
 * publish costs allocations and a getrandom() for its hash salt. The salt
 * is drawn once per process instead (it only has to be unpredictable from
 * outside). Freed when the thread exits. */
static pthread_key_t parser_key;
static pthread_once_t parser_once = PTHREAD_ONCE_INIT;
static unsigned long parser_salt;

static void parser_destroy(void *p) { XML_ParserFree(p); }

static void parser_key_init(void)
{
    pthread_key_create(&parser_key, parser_destroy);
    if (getrandom(&parser_salt, sizeof parser_salt, 0) != sizeof parser_salt || parser_salt == 0)
        parser_salt = (unsigned long)time(NULL) * 2654435761u | 1;
}

static XML_Parser parser_get(void)
{
    XML_Parser p;

    pthread_once(&parser_once, parser_key_init);
    p = pthread_getspecific(parser_key);
    if (p == NULL) {
        p = XML_ParserCreate("UTF-8");
        if (p == NULL || pthread_setspecific(parser_key, p) != 0) {
            if (p != NULL)
                XML_ParserFree(p);
            return NULL;
        }
    } else if (!XML_ParserReset(p, "UTF-8")) {
        return NULL;
    }
    XML_SetHashSalt(p, parser_salt);
    return p;
}

/* An ASCII byte that may follow '&' in a reference: a name or "#x1F". */
static bool is_ref_byte(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == ':' || c == '-' || c == '#';
}

/* Offset of the '&' that starts the entity reference expat stopped in, or
 * -1. A raw & is the usual XML mistake, and expat reports it as "invalid
 * token" at the first byte after "&name" that cannot continue a reference
 * (or "undefined entity" at the & itself, for "&name;"). */
static long stray_ampersand(XML_Parser p, const char *body, size_t len)
{
    enum XML_Error code = XML_GetErrorCode(p);
    XML_Index at = XML_GetCurrentByteIndex(p);
    long i;

    if (at < 0 || (size_t)at >= len || (code != XML_ERROR_INVALID_TOKEN && code != XML_ERROR_UNDEFINED_ENTITY))
        return -1;
    if (body[at] == '&')
        return code == XML_ERROR_UNDEFINED_ENTITY ? (long)at : -1;
    if (code != XML_ERROR_INVALID_TOKEN)
        return -1;
    for (i = (long)at - 1; i >= 0 && is_ref_byte(body[i]); i--)
        ;
    return i >= 0 && body[i] == '&' ? i : -1;
}

/* The detail for a document expat refused: its position and message, and
 * for a raw & the position of the & and how to write one. */
static void syntax_error(struct xml_state *st, const char *body, size_t len)
{
    unsigned long line = (unsigned long)XML_GetCurrentLineNumber(st->parser);
    unsigned long col = (unsigned long)XML_GetCurrentColumnNumber(st->parser) + 1;
    long amp = stray_ampersand(st->parser, body, len);

    if (amp >= 0) /* only ASCII name bytes lie between the & and expat's spot: one column each */
        col -= (unsigned long)(XML_GetCurrentByteIndex(st->parser) - amp);
    snprintf(st->detail, st->detail_len, "line %lu, column %lu: %s%s", line, col,
             XML_ErrorString(XML_GetErrorCode(st->parser)),
             amp >= 0 ? " (a literal & must be written &amp;)" : "");
    st->failed = true;
    st->err = CBX_ERR_INVALID;
}

enum cbx_err cbx_pub_parse_xml(const char *body, size_t len, const struct cbx_pub_limits *lim,
                               struct cbx_pub_batch *out, char *detail, size_t detail_len)
{
    struct xml_state st;
    enum cbx_err rc = CBX_OK;

    memset(&st, 0, sizeof st);
    st.batch = out;
    st.lim = lim;
    st.detail = detail;
    st.detail_len = detail_len;
    if (len > (size_t)INT32_MAX) {
        snprintf(detail, detail_len, "body too large");
        return CBX_ERR_TOO_LARGE;
    }
    st.parser = parser_get();
    if (st.parser == NULL)
        return CBX_ERR_NOMEM;
    XML_SetUserData(st.parser, &st);
    XML_SetElementHandler(st.parser, on_start, on_end);
    XML_SetCharacterDataHandler(st.parser, on_text);
    XML_SetStartDoctypeDeclHandler(st.parser, on_doctype);
    XML_SetEntityDeclHandler(st.parser, on_entity_decl);
    XML_SetExternalEntityRefHandler(st.parser, on_external_entity);
    XML_SetParamEntityParsing(st.parser, XML_PARAM_ENTITY_PARSING_NEVER);

    if (XML_Parse(st.parser, body, (int)len, XML_TRUE) == XML_STATUS_ERROR && !st.failed)
        syntax_error(&st, body, len);
    if (!st.failed && out->n == 0) {
        snprintf(detail, detail_len, "empty batch: no messages");
        st.failed = true;
        st.err = CBX_ERR_INVALID;
    }
    if (st.failed) {
        rc = st.err;
        cbx_pub_batch_free(out);
    }
    free(st.text.s);
    for (int f = 0; f < F_COUNT; f++)
        free(st.fields[f].s);
    return rc;
}
