/*
 * The printf-style logging callbacks handed to OpenVPN plugins
 * (plugin_log, plugin_vlog). They are C varargs functions, which stable
 * Rust cannot define: format here with vsnprintf, pass the finished line to
 * Rust (vpn_plugin_log_line), as OpenVPN's plugin_vlog formats with its own
 * printf.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* Implemented in Rust (plugin/ffi.rs). */
extern void vpn_plugin_log_line(int flags, const char *name, const char *line);
extern void vpn_plugin_secure_memzero(void *data, size_t len);
extern int vpn_plugin_base64_encode(const void *data, int size, char **str);
extern int vpn_plugin_base64_decode(const char *str, void *data, int size);

#define VPN_PLOG_ERRNO (1 << 8)
/* OpenVPN's ERR_BUF_SIZE. */
#define VPN_LOG_MAX 10240

static void vpn_plugin_vlog(int flags, const char *name, const char *format, va_list ap)
{
    int saved_errno = errno;
    char line[VPN_LOG_MAX];
    if (!format)
    {
        return;
    }
    int n = vsnprintf(line, sizeof(line), format, ap);
    if (n < 0)
    {
        return;
    }
    if ((flags & VPN_PLOG_ERRNO) && (size_t)n < sizeof(line))
    {
        snprintf(line + n, sizeof(line) - (size_t)n, ": %s (errno=%d)",
                 strerror(saved_errno), saved_errno);
    }
    vpn_plugin_log_line(flags, name, line);
}

static void vpn_plugin_log(int flags, const char *name, const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    vpn_plugin_vlog(flags, name, format, ap);
    va_end(ap);
}

/* struct openvpn_plugin_callbacks, field for field. */
struct vpn_plugin_callbacks
{
    void (*plugin_log)(int, const char *, const char *, ...);
    void (*plugin_vlog)(int, const char *, const char *, va_list);
    void (*plugin_secure_memzero)(void *, size_t);
    int (*plugin_base64_encode)(const void *, int, char **);
    int (*plugin_base64_decode)(const char *, void *, int);
};

struct vpn_plugin_callbacks vpn_plugin_callbacks = {
    vpn_plugin_log,
    vpn_plugin_vlog,
    vpn_plugin_secure_memzero,
    vpn_plugin_base64_encode,
    vpn_plugin_base64_decode,
};
