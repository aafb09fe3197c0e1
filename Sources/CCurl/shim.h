// Swift cannot call C variadic functions; these typed wrappers are the whole shim.
#include <curl/curl.h>

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
