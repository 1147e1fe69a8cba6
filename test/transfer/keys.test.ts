import { expect } from 'chai';
import { utils } from 'ssh2';
import { generateUsableKeyPair } from '../../src/transfer/keys';

// ssh2 1.x writes an ed25519 public key that starts with a zero byte as 31 bytes, then refuses it.
const MALFORMED = `-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMgAAAAtz
c2gtZWQyNTUxOQAAAB/JOS6OtFB2cDKpN2jKVeXjeJm6u9AFHzm4q7SEwTfWAAAA
kBij21MYo9tTAAAAC3NzaC1lZDI1NTE5AAAAH8k5Lo60UHZwMqk3aMpV5eN4mbq7
0AUfObirtITBN9YAAAA/9j5nPJQHFVAazJ2CDd0FZP9mlV47cFleaYUg3XSZh3PJ
OS6OtFB2cDKpN2jKVeXjeJm6u9AFHzm4q7SEwTfWAAAADmZlcnJ5LXRyYW5zZmVy
AQ==
-----END OPENSSH PRIVATE KEY-----
`;

describe('transfer keys: a fresh key is always one ssh2 reads back', () => {
  it('the captured key ssh2 made is one it refuses (the reason for the redraw)', () => {
    expect(utils.parseKey(MALFORMED)).to.be.instanceOf(Error);
  });

  it('draws again when a drawn key does not parse', () => {
    const good = utils.generateKeyPairSync('ed25519');
    const draws = [{ private: MALFORMED, public: '' }, { private: MALFORMED, public: '' }, good];
    let n = 0;
    expect(generateUsableKeyPair(() => draws[n++]).private).to.equal(good.private);
    expect(n).to.equal(3);
  });

  it('gives up with a clear error rather than loop forever', () => {
    expect(() => generateUsableKeyPair(() => ({ private: MALFORMED, public: '' }))).to.throw(/usable ed25519/);
  });

  it('3,000 real draws all parse (about one raw ssh2 key in 220 would not)', () => {
    for (let i = 0; i < 3000; i++) expect(utils.parseKey(generateUsableKeyPair().private)).not.to.be.instanceOf(Error);
  });
});
