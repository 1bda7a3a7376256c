#ifndef CSEED_OPENSSL_SHIM_H
#define CSEED_OPENSSL_SHIM_H
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/bio.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <openssl/bn.h>
#include <openssl/dh.h>
#include <openssl/ec.h>
#include <openssl/rsa.h>

// Certificate minting (SeedTLS CertificateAuthority): key generation macros over the variadic
// EVP_PKEY_Q_keygen, and the typed stack macros for subjectAltName lists.
static inline EVP_PKEY *seed_EVP_RSA_gen(unsigned int bits) { return EVP_RSA_gen(bits); }
static inline EVP_PKEY *seed_EVP_EC_gen(const char *curve) { return EVP_EC_gen(curve); }
static inline GENERAL_NAMES *seed_GENERAL_NAMES_new(void) { return sk_GENERAL_NAME_new_null(); }
static inline int seed_GENERAL_NAMES_push(GENERAL_NAMES *g, GENERAL_NAME *n) { return sk_GENERAL_NAME_push(g, n); }
static inline int seed_GENERAL_NAMES_num(const GENERAL_NAMES *g) { return sk_GENERAL_NAME_num(g); }
static inline GENERAL_NAME *seed_GENERAL_NAMES_value(const GENERAL_NAMES *g, int i) { return sk_GENERAL_NAME_value(g, i); }
static inline void seed_GENERAL_NAMES_free(GENERAL_NAMES *g) { GENERAL_NAMES_free(g); }
static inline STACK_OF(X509) *seed_X509_stack_new(void) { return sk_X509_new_null(); }
static inline int seed_X509_stack_push(STACK_OF(X509) *s, X509 *x) { return sk_X509_push(s, x); }
static inline void seed_X509_stack_free(STACK_OF(X509) *s) { sk_X509_free(s); }

// Macros Swift cannot import, wrapped one to one.
static inline long seed_SSL_CTX_set_min_proto_version(SSL_CTX *c, int v) { return SSL_CTX_set_min_proto_version(c, v); }
static inline long seed_SSL_CTX_set_max_proto_version(SSL_CTX *c, int v) { return SSL_CTX_set_max_proto_version(c, v); }
static inline long seed_SSL_CTX_set_mode(SSL_CTX *c, long m) { return SSL_CTX_set_mode(c, m); }
static inline long seed_SSL_set_mode(SSL *s, long m) { return SSL_set_mode(s, m); }
static inline long seed_SSL_CTX_set_session_cache_mode(SSL_CTX *c, long m) { return SSL_CTX_set_session_cache_mode(c, m); }
static inline long seed_SSL_CTX_sess_set_cache_size(SSL_CTX *c, long n) { return SSL_CTX_sess_set_cache_size(c, n); }
static inline long seed_SSL_CTX_set_dh_auto(SSL_CTX *c, long on) { return SSL_CTX_set_dh_auto(c, on); }
static inline long seed_SSL_set_tlsext_host_name(SSL *s, const char *name) { return SSL_set_tlsext_host_name(s, name); }
static inline long seed_SSL_CTX_set1_groups_list(SSL_CTX *c, const char *l) { return SSL_CTX_set1_groups_list(c, l); }
static inline long seed_BIO_get_mem_data(BIO *b, char **pp) { return BIO_get_mem_data(b, pp); }
static inline size_t seed_BIO_ctrl_pending(BIO *b) { return BIO_ctrl_pending(b); }
static inline long seed_SSL_CTX_add_extra_chain_cert(SSL_CTX *c, X509 *x) { return SSL_CTX_add_extra_chain_cert(c, x); }
static inline long seed_SSL_CTX_set_options(SSL_CTX *c, long o) { return (long)SSL_CTX_set_options(c, (uint64_t)o); }
static inline long seed_SSL_CTX_set_read_ahead(SSL_CTX *c, int on) { return SSL_CTX_set_read_ahead(c, on); }
static inline long seed_SSL_get_max_cert_list(SSL *s) { return SSL_get_max_cert_list(s); }
static inline int seed_SSL_CTX_set_ecdh_auto(SSL_CTX *c, int on) { (void)c; (void)on; return 1; }
static inline int seed_TLS1_2_VERSION(void) { return TLS1_2_VERSION; }
static inline int seed_SSL_VERIFY_PEER(void) { return SSL_VERIFY_PEER; }
static inline int seed_X509_V_OK(void) { return X509_V_OK; }
static inline int seed_OPENSSL_init(void) {
    return OPENSSL_init_ssl(OPENSSL_INIT_LOAD_SSL_STRINGS | OPENSSL_INIT_LOAD_CRYPTO_STRINGS, NULL);
}

// Option bits are SSL_OP_BIT(n) expressions Swift cannot import.
static inline uint64_t seed_SSL_OP_NO_RENEGOTIATION(void) { return SSL_OP_NO_RENEGOTIATION; }
static inline uint64_t seed_SSL_OP_CIPHER_SERVER_PREFERENCE(void) { return SSL_OP_CIPHER_SERVER_PREFERENCE; }
static inline uint64_t seed_SSL_OP_NO_TICKET(void) { return SSL_OP_NO_TICKET; }
static inline uint64_t seed_SSL_OP_NO_COMPRESSION(void) { return SSL_OP_NO_COMPRESSION; }
static inline uint64_t seed_SSL_OP_IGNORE_UNEXPECTED_EOF(void) { return SSL_OP_IGNORE_UNEXPECTED_EOF; }
static inline uint64_t seed_SSL_CTX_set_options64(SSL_CTX *c, uint64_t o) { return SSL_CTX_set_options(c, o); }
static inline void seed_BIO_set_retry_read(BIO *b) { BIO_set_retry_read(b); }
static inline void seed_BIO_clear_retry_flags(BIO *b) { BIO_clear_retry_flags(b); }
static inline long seed_SSL_CTX_set_max_send_fragment(SSL_CTX *c, long n) { return SSL_CTX_set_max_send_fragment(c, n); }
static inline long seed_SSL_session_reused(SSL *s) { return SSL_session_reused(s); }
static inline int seed_sk_X509_num(const STACK_OF(X509) *s) { return sk_X509_num(s); }
#endif
