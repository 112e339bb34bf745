#!/usr/bin/env python3
"""Writes the ingest tests' data files into tests/data/ingest/.

Run from the repository root:  python3 tools/make_ingest_test_data.py
Needs qpdf and pdftotext (poppler-utils), Pillow, and the DejaVu fonts; the
filing pages are copied from /work/shared/corpus/finance (or --corpus DIR).
The outputs are committed, so the tests need none of this.
"""

import argparse
import os
import struct
import subprocess
import zlib

from PIL import Image, ImageDraw, ImageFont

OUT = os.path.join('tests', 'data', 'ingest')
FONT = '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf'

# (filing, 1-based page): a two-column MD&A page, a table-heavy page with a
# line ending in "333-" (pdftotext joins it to the next line), and a
# financial statement page.
FILING_PAGES = [('INTEL_2020_10K', 70), ('BOSTONPROPERTIES_2015_10K', 206),
                ('ACTIVSIONBLIZZARD_2023Q2_10Q', 10)]

PROSE = ('The quarterly report shows that revenue increased because demand for '
         'cloud services remained strong across every region where the company '
         'operates and management expects similar growth during the next fiscal '
         'year while operating expenses are likely to rise with new hiring.')


def pdf_string(text):
    return '(' + text.replace('\\', '\\\\').replace('(', '\\(').replace(')', '\\)') + ')'


def write_pdf(path, pages, extra_objects=None, font_extra=''):
    """A minimal PDF: each page is (content stream, page dictionary extras).
    Fonts: F1 Helvetica, F2 Helvetica-Bold, both WinAnsi."""
    objects = []  # bodies, object n is objects[n-1]

    def add(body):
        objects.append(body)
        return len(objects)

    catalog = add(None)
    pages_id = add(None)
    font_regular = add('<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica '
                       '/Encoding /WinAnsiEncoding' + font_extra + ' >>')
    font_bold = add('<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold '
                    '/Encoding /WinAnsiEncoding >>')
    for body in extra_objects or []:
        add(body)
    kids = []
    for content, page_extra in pages:
        data = content.encode('latin-1')
        stream = add(f'<< /Length {len(data)} >>\nstream\n'.encode('latin-1') + data + b'\nendstream')
        kids.append(add(f'<< /Type /Page /Parent {pages_id} 0 R /MediaBox [0 0 612 792] '
                        f'/Resources << /Font << /F1 {font_regular} 0 R /F2 {font_bold} 0 R >> >> '
                        f'/Contents {stream} 0 R {page_extra}>>'))
    objects[catalog - 1] = f'<< /Type /Catalog /Pages {pages_id} 0 R >>'
    objects[pages_id - 1] = ('<< /Type /Pages /Kids [' + ' '.join(f'{k} 0 R' for k in kids) +
                             f'] /Count {len(kids)} >>')

    out = bytearray(b'%PDF-1.4\n%\xe2\xe3\xcf\xd3\n')
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        body = body if isinstance(body, bytes) else body.encode('latin-1')
        out += f'{number} 0 obj\n'.encode() + body + b'\nendobj\n'
    xref = len(out)
    out += f'xref\n0 {len(objects) + 1}\n0000000000 65535 f \n'.encode()
    for offset in offsets:
        out += f'{offset:010d} 00000 n \n'.encode()
    out += f'trailer\n<< /Size {len(objects) + 1} /Root {catalog} 0 R >>\nstartxref\n{xref}\n%%EOF\n'.encode()
    with open(path, 'wb') as f:
        f.write(out)
    return bytes(out)


def text_lines(lines, x=72, y=720, size=11, leading=14, font='F1'):
    body = f'BT /{font} {size} Tf {leading} TL {x} {y} Td\n'
    body += '\n'.join(f'{pdf_string(line)} Tj T*' for line in lines)
    return body + '\nET\n'


def wrap(text, width):
    lines, line = [], ''
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = (line + ' ' + word).strip()
    return lines + [line]


def make_layout_pdf():
    """A bold title, a paragraph with a word hyphenated across lines, a second
    paragraph after a gap."""
    content = text_lines(['Quarterly Report'], y=720, size=18, font='F2')
    content += text_lines(['Revenue grew in every region this year and the',
                           'board approved the new capital allocation infor-',
                           'mation policy for all segments.'], y=680)
    content += text_lines(['Operating expenses rose with hiring.',
                           'Margins held steady.'], y=600)
    write_pdf(os.path.join(OUT, 'layout.pdf'), [(content, '')])


def make_rotated_pdf():
    write_pdf(os.path.join(OUT, 'rotated.pdf'),
              [(text_lines(['Rotated page text'], x=72, y=720, size=20), '/Rotate 90 ')])


def make_zero_pages_pdf():
    write_pdf(os.path.join(OUT, 'zero_pages.pdf'), [])


def make_truncated_pdf():
    pages = [(text_lines(wrap(PROSE, 70)), '') for _ in range(3)]
    data = write_pdf(os.path.join(OUT, 'truncated.pdf'), pages)
    with open(os.path.join(OUT, 'truncated.pdf'), 'wb') as f:
        f.write(data[:len(data) * 6 // 10])


def make_encrypted_pdf():
    plain = os.path.join(OUT, 'encrypted_plain.tmp.pdf')
    write_pdf(plain, [(text_lines(wrap(PROSE, 70)), '')])
    subprocess.run(['qpdf', '--encrypt', 'folio-user', 'folio-owner', '256', '--', plain,
                    os.path.join(OUT, 'encrypted.pdf')], check=True)
    os.remove(plain)


def to_unicode_cmap(mapping):
    """A ToUnicode CMap mapping single-byte codes to the given code points."""
    entries = [f'<{code:02X}> <{target:04X}>' for code, target in sorted(mapping.items())]
    chunks = [entries[i:i + 100] for i in range(0, len(entries), 100)]
    body = ('/CIDInit /ProcSet findresource begin 12 dict begin begincmap\n'
            '/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n'
            '/CMapName /Folio-Test def /CMapType 2 def\n'
            '1 begincodespacerange <00> <FF> endcodespacerange\n')
    for chunk in chunks:
        body += f'{len(chunk)} beginbfchar\n' + '\n'.join(chunk) + '\nendbfchar\n'
    body += 'endcmap CMapName currentdict /CMap defineresource pop end end'
    data = body.encode('latin-1')
    return f'<< /Length {len(data)} >>\nstream\n'.encode('latin-1') + data + b'\nendstream'


def make_mojibake_pdfs():
    """Pages that render as English but whose text layer is garbage, as from
    fonts without a usable ToUnicode map: private-use code points, and glyph
    ids read as characters (every letter shifted down by 29: 'e' -> 'H')."""
    lines = wrap(PROSE + ' ' + PROSE, 70)
    private_use = {code: 0xE000 + code for code in range(33, 127)}
    shifted = {code: code - 29 for code in range(65, 123)}
    # The ToUnicode stream is object 5: catalog, pages, two fonts, then it.
    for name, mapping in (('mojibake_private_use.pdf', private_use), ('mojibake_shifted.pdf', shifted)):
        write_pdf(os.path.join(OUT, name), [(text_lines(lines), '')],
                  extra_objects=[to_unicode_cmap(mapping)], font_extra=' /ToUnicode 5 0 R')


def make_filing_pages(corpus):
    target = os.path.join(OUT, 'filing_pages.pdf')
    args = ['qpdf', '--empty', '--pages']
    for filing, page in FILING_PAGES:
        args += [os.path.join(corpus, filing + '.pdf'), str(page)]
    args += ['--', '--object-streams=generate', '--recompress-flate', '--compression-level=9', target]
    subprocess.run(args, check=True)
    reference = subprocess.run(['pdftotext', target, '-'], check=True, capture_output=True).stdout
    with open(os.path.join(OUT, 'filing_pages.pdftotext.txt'), 'wb') as f:
        f.write(reference)


def make_multipage_tiff():
    """Three 300-dpi pages, one sentence each, bilevel with G4 compression."""
    font = ImageFont.truetype(FONT, 50)
    pages = []
    for word in ('alpha', 'bravo', 'charlie'):
        image = Image.new('L', (1500, 400), 255)
        draw = ImageDraw.Draw(image)
        draw.text((100, 80), f'Page {word} of the scan', font=font, fill=0)
        draw.text((100, 200), 'Total assets were stable', font=font, fill=0)
        pages.append(image.convert('1'))
    pages[0].save(os.path.join(OUT, 'pages.tiff'), save_all=True, append_images=pages[1:],
                  compression='group4', dpi=(300, 300))


def png_chunk(kind, data):
    return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))


def make_huge_png():
    """A real PNG header for 30000 x 30000 pixels (900 megapixels) followed by
    only the first rows: a reader that decodes before checking the size would
    try to allocate it (or fail on the data rather than the size)."""
    header = struct.pack('>IIBBBBB', 30000, 30000, 1, 0, 0, 0, 0)  # 1-bit gray
    rows = zlib.compress(b'\x00' + b'\xff' * (30000 // 8) * 1)
    with open(os.path.join(OUT, 'huge.png'), 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\n' + png_chunk(b'IHDR', header) + png_chunk(b'IDAT', rows) +
                png_chunk(b'IEND', b''))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--corpus', default='/work/shared/corpus/finance')
    args = parser.parse_args()
    os.makedirs(OUT, exist_ok=True)
    make_layout_pdf()
    make_rotated_pdf()
    make_zero_pages_pdf()
    make_truncated_pdf()
    make_encrypted_pdf()
    make_mojibake_pdfs()
    make_filing_pages(args.corpus)
    make_multipage_tiff()
    make_huge_png()


if __name__ == '__main__':
    main()
