// Swift cannot call C variadic functions; these typed wrappers are the whole shim.
#include <curl/curl.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdlib.h>

static inline CURLcode jobstore_curl_setopt_long(CURL *h, CURLoption o, long v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode jobstore_curl_setopt_ptr(CURL *h, CURLoption o, const void *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode jobstore_curl_setopt_off(CURL *h, CURLoption o, curl_off_t v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode jobstore_curl_getinfo_long(CURL *h, CURLINFO i, long *v) { return curl_easy_getinfo(h, i, v); }
static inline CURLcode jobstore_curl_getinfo_off(CURL *h, CURLINFO i, curl_off_t *v) { return curl_easy_getinfo(h, i, v); }
static inline CURLMcode jobstore_curl_multi_setopt_long(CURLM *m, CURLMoption o, long v) { return curl_multi_setopt(m, o, v); }

/// The signature of CURLOPT_WRITEFUNCTION, CURLOPT_READFUNCTION and CURLOPT_HEADERFUNCTION.
typedef size_t (*jobstore_curl_data_callback)(char *buffer, size_t size, size_t count, void *context);
static inline CURLcode jobstore_curl_setopt_callback(CURL *h, CURLoption o, jobstore_curl_data_callback cb) { return curl_easy_setopt(h, o, cb); }
static inline CURLcode jobstore_curl_message_result(CURLMsg *m) { return m->data.result; }

/* The session's share handle: TLS session IDs (and DNS answers) shared by every connection of
 * the pool, so a connection opened later resumes a TLS session instead of a full handshake.
 * `locks` receives the mutexes to free after curl_share_cleanup. */
static void jobstore_share_lock(CURL *h, curl_lock_data d, curl_lock_access a, void *u) {
    (void)h; (void)a; pthread_mutex_lock(&((pthread_mutex_t *)u)[d]);
}
static void jobstore_share_unlock(CURL *h, curl_lock_data d, void *u) {
    (void)h; pthread_mutex_unlock(&((pthread_mutex_t *)u)[d]);
}
static inline CURLSH *jobstore_curl_share_new(void **locks) {
    pthread_mutex_t *m = calloc(CURL_LOCK_DATA_LAST, sizeof(pthread_mutex_t));
    if (!m) return NULL;
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++) pthread_mutex_init(&m[i], NULL);
    CURLSH *s = curl_share_init();
    if (!s) { free(m); return NULL; }
    curl_share_setopt(s, CURLSHOPT_LOCKFUNC, jobstore_share_lock);
    curl_share_setopt(s, CURLSHOPT_UNLOCKFUNC, jobstore_share_unlock);
    curl_share_setopt(s, CURLSHOPT_USERDATA, (void *)m);
    curl_share_setopt(s, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    curl_share_setopt(s, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    *locks = m;
    return s;
}
static inline void jobstore_curl_share_free(CURLSH *s, void *locks) {
    curl_share_cleanup(s);
    free(locks);
}
/* 1 when the transfer's TLS connection resumed a session; 0 after a full handshake, or not TLS. */
static inline int jobstore_curl_tls_session_reused(CURL *h) {
    struct curl_tlssessioninfo *info = NULL;
    if (curl_easy_getinfo(h, CURLINFO_TLS_SSL_PTR, &info) != CURLE_OK || !info) return 0;
    if (info->backend != CURLSSLBACKEND_OPENSSL || !info->internals) return 0;
    return SSL_session_reused((SSL *)info->internals) == 1;
}
