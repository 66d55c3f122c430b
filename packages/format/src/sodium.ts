/** The one place that loads libsodium (sumo build: it has crypto_pwhash and hchacha20). */
import sodiumModule from 'libsodium-wrappers-sumo';

await sodiumModule.ready;

export const sodium = sodiumModule;
