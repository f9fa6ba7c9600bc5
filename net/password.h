/*
 * net/password.h: password hashes for USERS (PBKDF2-HMAC-SHA256), made by
 * `gottwall passwd` and checked by the server's login.
 */
#ifndef GW_NET_PASSWORD_H
#define GW_NET_PASSWORD_H

/* Hashes a password for USERS (PBKDF2-HMAC-SHA256, random salt) into a new
 * string "pbkdf2-sha256$iterations$salt_b64$hash_b64"; the caller frees. */
char *gw__password_hash(const char *password);
/* 1 if password matches hash, else 0. Constant-time compare. */
int gw__password_verify(const char *password, const char *hash);

#endif /* GW_NET_PASSWORD_H */
