// Hardware profiles and the timings derived from them.
export * from './profile.js';
