/** URL paths both sides of the wire agree on. */

/** Where tus pack uploads are created and continued. */
export const TUS_PATH = '/packs/uploads';
