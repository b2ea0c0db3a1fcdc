/** Every API key token issued during the run, so the log scan can look for each in clear text. */
export const issuedTokens = new Set<string>();
