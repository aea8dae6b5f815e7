/**
 * Whether a JSON text nests objects/arrays deeper than `maxDepth`, decided by one scan of the
 * text before parsing. V8's JSON.parse copes with any depth, but JSON.stringify (bulk body,
 * fan-out, dead letter) recurses and throws on a few thousand levels: such a line is refused
 * before it becomes a document. Strings are skipped, so brackets inside them do not count.
 */
export function exceedsJsonDepth(text: string, maxDepth: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c /* \ */) i++;
      else if (c === 0x22 /* " */) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (++depth > maxDepth) return true;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      depth--;
    }
  }
  return false;
}
