// Covers: k6/html's form helpers (serialize, serializeArray, serializeObject
// and val() of every kind of field, k6's rules for which fields count) and
// its sibling and ancestor navigation (next, prev, nextAll, prevAll,
// siblings, closest).
import { parseHTML } from 'k6/html';
import { check } from 'k6';
export const options = {
  iterations: 1,
  thresholds: { checks: ['rate==1'] },
};
const PAGE = `<form id="f"><input type="hidden" name="csrf" value="a b&c">
<input name="user" value="ann"><input name="empty"><input type="checkbox" name="keep" checked="checked">
<input type="checkbox" name="skip"><input type="radio" name="r" value="2" checked="checked">
<input name="off" value="x" disabled="disabled"><input type="submit" name="go" value="Go">
<select name="one"><option value="1">One</option><option selected>Two</option></select>
<select name="many" multiple><option value="a" selected>A</option><option value="b">B</option><option value="c" selected>C</option></select>
<select name="none"><option value="z">Z</option></select>
<textarea name="t">x &amp; y</textarea><button name="b">B</button></form>
<ul><li id="l1">1</li><li id="l2">2</li><li id="l3">3</li></ul>`;
export default function () {
  const doc = parseHTML(PAGE);
  const f = doc.find('form');
  const o = f.serializeObject();
  check(doc, {
    'serializeObject': () => o.csrf === 'a b&c' && o.user === 'ann' && o.empty === '' && o.keep === 'on' && o.skip === undefined && o.r === '2' && o.off === undefined && o.go === undefined,
    'select values': () => o.one === 'Two' && JSON.stringify(o.many) === '["a","c"]' && o.none === '',
    'textarea html': () => o.t === 'x &amp; y',
    'serialize': () => f.serialize() === 'csrf=a+b%26c&empty=&keep=on&many=a&many=c&none=&one=Two&r=2&t=x+%26amp%3B+y&user=ann',
    'serializeArray order': () => f.serializeArray().map((x) => x.name).join() === 'csrf,user,empty,keep,r,one,many,none,t',
    'next prev siblings': (d) => d.find('#l1').next().attr('id') === 'l2' && d.find('#l3').prev().attr('id') === 'l2' && d.find('#l2').siblings().size() === 2 && d.find('#l1').nextAll().size() === 2 && d.find('#l3').prevAll('#l1').size() === 1,
    'closest': (d) => d.find('li').closest('ul').size() === 1 && d.find('#l1').closest('li').attr('id') === 'l1',
    'html of nothing': (d) => d.find('table').html() === '',
    'val of nothing': (d) => d.find('table').val() === undefined && d.find('li').val() === undefined,
  });
}
