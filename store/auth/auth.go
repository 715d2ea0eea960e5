// Package auth owns tyst's authentication primitives: password hashing and the
// password policy, opaque secrets (session ids, API tokens, setup tokens) and
// their stored hashes, TOTP (RFC 6238) and recovery codes.
//
// Everything here is a pure function of its arguments and crypto/rand: no
// database, no HTTP, no logging, no global state that changes. The package
// promises that
//
//   - secrets, password hashes and TOTP secrets come from crypto/rand;
//   - every comparison of a secret value is constant-time;
//   - the verifiers (VerifyPassword, VerifyTOTP) return false on any malformed
//     input and never panic;
//   - errors are safe to show to clients: they never contain the password,
//     secret or code they were given.
//
// What the database stores: a PHC string from HashPassword for passwords,
// SecretHash(secret) for session ids and tokens, SecretHash of
// NormalizeRecoveryCode(code) for recovery codes, and the raw TOTP secret with
// the last accepted step.
package auth
