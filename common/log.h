/* log.h - one line per event, with a level and a timestamp, to standard error.
 * Not for output meant for people reading a tool's result (that is stdout). */
#ifndef CBX_LOG_H
#define CBX_LOG_H

enum cbx_log_level { CBX_LOG_ERROR, CBX_LOG_WARN, CBX_LOG_INFO, CBX_LOG_DEBUG };

/* Sets the most verbose level that is printed (default info). */
void cbx_log_set_level(enum cbx_log_level level);
/* True when messages of this level are printed; lets callers skip formatting. */
int cbx_log_enabled(enum cbx_log_level level);
void cbx_log(enum cbx_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
