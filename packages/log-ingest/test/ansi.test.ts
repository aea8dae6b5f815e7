import t from 'tap';
import { stripAnsiEscapes } from '../src/index.js';

const ESC = '\u001b';
const BEL = '\u0007';
const ST = `${ESC}\\`;

// [what, raw message from a device, what must be stored]
const TABLE: Array<[string, string, string]> = [
  ['plain text is untouched', 'boot ok: 42% [x]', 'boot ok: 42% [x]'],
  ['SGR colour', `${ESC}[31merror${ESC}[0m done`, 'error done'],
  ['SGR with many params', `${ESC}[1;38;5;196mhot${ESC}[m`, 'hot'],
  ['SGR truecolor with colons', `${ESC}[38:2:255:0:0mred${ESC}[0m`, 'red'],
  ['cursor movement', `a${ESC}[2Kb${ESC}[10;20Hc${ESC}[3Ad`, 'abcd'],
  ['private mode: hide/show cursor', `${ESC}[?25lspinner${ESC}[?25h`, 'spinner'],
  ['private mode: alt screen', `${ESC}[?1049hfull${ESC}[?1049l`, 'full'],
  ['CSI with > parameter (device attributes)', `${ESC}[>0;276;0cx`, 'x'],
  ['CSI with intermediate byte (cursor style)', `${ESC}[2 qx`, 'x'],
  ['8-bit CSI', '\u009b31mx', 'x'],
  ['OSC title ending in BEL', `${ESC}]0;my title${BEL}after`, 'after'],
  ['OSC title ending in ST', `${ESC}]2;my title${ST}after`, 'after'],
  ['OSC 8 hyperlink', `${ESC}]8;;https://example.com${ST}link${ESC}]8;;${ST}`, 'link'],
  ['two-character: reset (RIS)', `${ESC}cclean`, 'clean'],
  ['two-character: save/restore cursor', `${ESC}7x${ESC}8`, 'x'],
  ['two-character: reverse index', `${ESC}Mx`, 'x'],
  ['two-character: keypad modes', `${ESC}=x${ESC}>`, 'x'],
  ['charset designation', `${ESC}(Bx${ESC})0`, 'x'],
  ['DCS string ending in ST', `${ESC}P1;2|abc${ST}x`, 'x'],
  ['unicode around escapes survives', `ü${ESC}[1m→${ESC}[0m😀`, 'ü→😀'],
  ['a lone ESC before an ordinary letter is text, not a sequence', `a${ESC}b`, `a${ESC}b`],
];

for (const [what, raw, expected] of TABLE) {
  t.test(what, async (t) => {
    t.equal(stripAnsiEscapes(raw), expected);
  });
}
