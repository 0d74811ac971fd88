//! Who may call the API: credentials at `/auth_token` (LDAP or htpasswd), the JSON Web
//! Tokens minted there, and the slow-down of clients that keep failing.
//! PLACEHOLDER: being written.
