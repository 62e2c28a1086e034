/* admin_proto.c - encoding and decoding admin socket lines (docs/ADMIN.md).
 * Untrusted input on the daemon's side: every request line is bounded by the
 * caller (CBX_ADMIN_LINE_MAX) and checked member by member here. */
#include "admin_proto.h"
#include "pub.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const base_members[] = { "id", "version", "cmd", NULL };

static bool in_list(const char *name, const char *const *list)
{
    for (size_t i = 0; list != NULL && list[i] != NULL; i++)
        if (strcmp(name, list[i]) == 0)
            return true;
    return false;
}

/* Parses exactly one JSON value from text[0..len), white space around it allowed. */
static cJSON *parse_value(const char *text, size_t len)
{
    const char *end = NULL;
    cJSON *v = cJSON_ParseWithLengthOpts(text, len, &end, false);

    if (v == NULL)
        return NULL;
    while (end != NULL && end < text + len && (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
        end++;
    if (end != text + len) {
        cJSON_Delete(v);
        return NULL;
    }
    return v;
}

enum cbx_err cbx_admin_request_parse(const char *line, size_t len, struct cbx_admin_request *req, char *err,
                                     size_t errlen)
{
    const cJSON *id, *version, *cmd;
    char *s;

    req->root = NULL;
    req->cmd = NULL;
    snprintf(req->id, sizeof req->id, "null");
    if (len > CBX_ADMIN_LINE_MAX) {
        snprintf(err, errlen, "request line over %d bytes", CBX_ADMIN_LINE_MAX);
        return CBX_ERR_INVALID;
    }
    req->root = parse_value(line, len);
    if (req->root == NULL) {
        snprintf(err, errlen, "invalid JSON: a request is one JSON object on one line");
        return CBX_ERR_INVALID;
    }
    if (!cJSON_IsObject(req->root)) {
        snprintf(err, errlen, "a request must be a JSON object");
        return CBX_ERR_INVALID;
    }
    id = cJSON_GetObjectItemCaseSensitive(req->root, "id");
    if (id != NULL) {
        double d = id->valuedouble;
        if (cJSON_IsNumber(id) && d - d == 0) { /* finite */
            /* exact integers print as integers, anything else with every digit */
            if (d > -9007199254740992.0 && d < 9007199254740992.0 && d == (double)(long long)d)
                snprintf(req->id, sizeof req->id, "%lld", (long long)d);
            else
                snprintf(req->id, sizeof req->id, "%.17g", d);
        } else if (cJSON_IsString(id) && strlen(id->valuestring) <= CBX_ADMIN_ID_MAX) {
            struct cbx_buf b;
            cbx_buf_init(&b);
            cbx_buf_add_json_string(&b, id->valuestring, strlen(id->valuestring));
            if (!b.ok || b.len >= sizeof req->id) {
                cbx_buf_free(&b);
                snprintf(err, errlen, "out of memory");
                return CBX_ERR_NOMEM;
            }
            memcpy(req->id, b.s, b.len + 1);
            cbx_buf_free(&b);
        } else if (!cJSON_IsNull(id)) {
            snprintf(err, errlen, "\"id\" must be a number, a string of at most %d bytes, or null",
                     CBX_ADMIN_ID_MAX);
            return CBX_ERR_INVALID;
        }
    }
    /* a raw control character in a string or invalid UTF-8 is not JSON,
     * though cJSON takes it (checked once the id is known, for the reply), and would break a tail's output line */
    if (cbx_json_text_check(line, len, err + 14, errlen > 14 ? errlen - 14 : 0) != CBX_OK) {
        memcpy(err, "invalid JSON: ", errlen > 14 ? 14 : 0);
        return CBX_ERR_INVALID;
    }
    version = cJSON_GetObjectItemCaseSensitive(req->root, "version");
    if (version != NULL && !(cJSON_IsNumber(version) && version->valuedouble == CBX_ADMIN_PROTOCOL)) {
        s = cJSON_PrintUnformatted(version);
        snprintf(err, errlen, "unsupported protocol version %.32s (cometboxd speaks %d)", s ? s : "?",
                 CBX_ADMIN_PROTOCOL);
        free(s);
        return CBX_ERR_INVALID;
    }
    cmd = cJSON_GetObjectItemCaseSensitive(req->root, "cmd");
    if (cmd == NULL) {
        snprintf(err, errlen, "\"cmd\" is missing");
        return CBX_ERR_INVALID;
    }
    if (!cJSON_IsString(cmd)) {
        snprintf(err, errlen, "\"cmd\" must be a string");
        return CBX_ERR_INVALID;
    }
    req->cmd = cmd->valuestring;
    return CBX_OK;
}

void cbx_admin_request_free(struct cbx_admin_request *req)
{
    cJSON_Delete(req->root);
    req->root = NULL;
    req->cmd = NULL;
}

enum cbx_err cbx_admin_args_check(const struct cbx_admin_request *req, const char *const *allowed, char *err,
                                  size_t errlen)
{
    const cJSON *m;

    cJSON_ArrayForEach(m, req->root) {
        if (in_list(m->string, base_members) || in_list(m->string, allowed))
            continue;
        snprintf(err, errlen, "%.32s: unknown argument \"%.64s\"", req->cmd ? req->cmd : "?", m->string);
        return CBX_ERR_INVALID;
    }
    return CBX_OK;
}

const cJSON *cbx_admin_arg(const struct cbx_admin_request *req, const char *name)
{
    return cJSON_GetObjectItemCaseSensitive(req->root, name);
}

/* The shortest of 15 or 17 significant digits that reads back as d. */
static void add_double(struct cbx_buf *out, double d)
{
    char tmp[32];

    snprintf(tmp, sizeof tmp, "%.15g", d);
    if (strtod(tmp, NULL) != d)
        snprintf(tmp, sizeof tmp, "%.17g", d);
    cbx_buf_adds(out, tmp);
}

void cbx_admin_json_write(struct cbx_buf *out, const cJSON *v)
{
    const cJSON *el;
    bool first = true;

    if (cJSON_IsObject(v) || cJSON_IsArray(v)) {
        cbx_buf_add(out, cJSON_IsObject(v) ? "{" : "[", 1);
        cJSON_ArrayForEach(el, v) {
            if (!first)
                cbx_buf_add(out, ",", 1);
            first = false;
            if (cJSON_IsObject(v)) {
                cbx_buf_add_json_string(out, el->string, strlen(el->string));
                cbx_buf_add(out, ":", 1);
            }
            cbx_admin_json_write(out, el);
        }
        cbx_buf_add(out, cJSON_IsObject(v) ? "}" : "]", 1);
    } else if (cJSON_IsString(v)) {
        cbx_buf_add_json_string(out, v->valuestring, strlen(v->valuestring));
    } else if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (d - d != 0) /* not finite: JSON has no such number */
            cbx_buf_adds(out, "null");
        else if (d > -1e18 && d < 1e18 && d == (double)(long long)d)
            cbx_buf_addf(out, "%lld", (long long)d);
        else
            add_double(out, d);
    } else if (cJSON_IsTrue(v)) {
        cbx_buf_adds(out, "true");
    } else if (cJSON_IsFalse(v)) {
        cbx_buf_adds(out, "false");
    } else if (cJSON_IsRaw(v)) {
        cbx_buf_adds(out, v->valuestring);
    } else {
        cbx_buf_adds(out, "null");
    }
}

void cbx_admin_reply_ok(struct cbx_buf *out, const char *id_json, const cJSON *result)
{
    cbx_buf_adds(out, "{\"id\":");
    cbx_buf_adds(out, id_json);
    cbx_buf_adds(out, ",\"ok\":true,\"result\":");
    if (result != NULL)
        cbx_admin_json_write(out, result);
    else
        cbx_buf_adds(out, "{}");
    cbx_buf_adds(out, "}\n");
}

void cbx_admin_reply_error(struct cbx_buf *out, const char *id_json, const char *text)
{
    cbx_buf_adds(out, "{\"id\":");
    cbx_buf_adds(out, id_json);
    cbx_buf_adds(out, ",\"ok\":false,\"error\":");
    cbx_buf_add_json_string(out, text, strlen(text));
    cbx_buf_adds(out, "}\n");
}

void cbx_admin_reply_message(struct cbx_buf *out, const char *id_json, const char *msg_json, size_t len)
{
    cbx_buf_adds(out, "{\"id\":");
    cbx_buf_adds(out, id_json);
    cbx_buf_adds(out, ",\"message\":");
    cbx_buf_add(out, msg_json, len);
    cbx_buf_adds(out, "}\n");
}

void cbx_admin_reply_end(struct cbx_buf *out, const char *id_json, const char *reason)
{
    cbx_buf_adds(out, "{\"id\":");
    cbx_buf_adds(out, id_json);
    cbx_buf_adds(out, ",\"end\":");
    cbx_buf_add_json_string(out, reason, strlen(reason));
    cbx_buf_adds(out, "}\n");
}

char *cbx_admin_request_encode(uint64_t id, const char *cmd, const cJSON *args, size_t *len)
{
    struct cbx_buf b;
    const cJSON *m;

    cbx_buf_init(&b);
    cbx_buf_addf(&b, "{\"version\":%d,\"id\":%llu,\"cmd\":", CBX_ADMIN_PROTOCOL, (unsigned long long)id);
    cbx_buf_add_json_string(&b, cmd, strlen(cmd));
    if (args != NULL) {
        cJSON_ArrayForEach(m, args) {
            cbx_buf_add(&b, ",", 1);
            cbx_buf_add_json_string(&b, m->string, strlen(m->string));
            cbx_buf_add(&b, ":", 1);
            cbx_admin_json_write(&b, m);
        }
    }
    cbx_buf_adds(&b, "}\n");
    if (!b.ok) {
        cbx_buf_free(&b);
        return NULL;
    }
    if (len != NULL)
        *len = b.len;
    return b.s; /* the buffer's bytes, NUL-terminated */
}

enum cbx_err cbx_admin_response_parse(const char *line, size_t len, struct cbx_admin_response *resp, char *err,
                                      size_t errlen)
{
    const cJSON *id, *ok, *v;

    memset(resp, 0, sizeof *resp);
    resp->root = parse_value(line, len);
    if (resp->root == NULL || !cJSON_IsObject(resp->root)) {
        snprintf(err, errlen, "the daemon's answer is not a JSON object");
        return CBX_ERR_INVALID;
    }
    id = cJSON_GetObjectItemCaseSensitive(resp->root, "id");
    if (cJSON_IsNumber(id))
        resp->id = id->valuedouble;
    else if (id == NULL || cJSON_IsNull(id))
        resp->id = -1;
    else {
        snprintf(err, errlen, "the daemon's answer has an \"id\" that is not a number");
        return CBX_ERR_INVALID;
    }
    ok = cJSON_GetObjectItemCaseSensitive(resp->root, "ok");
    if (cJSON_IsTrue(ok)) {
        resp->kind = CBX_ADMIN_OK;
        resp->result = cJSON_GetObjectItemCaseSensitive(resp->root, "result");
        if (resp->result != NULL)
            return CBX_OK;
    } else if (cJSON_IsFalse(ok)) {
        resp->kind = CBX_ADMIN_ERROR;
        v = cJSON_GetObjectItemCaseSensitive(resp->root, "error");
        if (cJSON_IsString(v)) {
            resp->error = v->valuestring;
            return CBX_OK;
        }
    } else if ((v = cJSON_GetObjectItemCaseSensitive(resp->root, "message")) != NULL && cJSON_IsObject(v)) {
        resp->kind = CBX_ADMIN_MESSAGE;
        resp->message = v;
        return CBX_OK;
    } else if ((v = cJSON_GetObjectItemCaseSensitive(resp->root, "end")) != NULL && cJSON_IsString(v)) {
        resp->kind = CBX_ADMIN_END;
        resp->end = v->valuestring;
        return CBX_OK;
    }
    snprintf(err, errlen, "the daemon's answer is not one of this protocol (version %d)", CBX_ADMIN_PROTOCOL);
    return CBX_ERR_INVALID;
}

void cbx_admin_response_free(struct cbx_admin_response *resp)
{
    cJSON_Delete(resp->root);
    resp->root = NULL;
}
