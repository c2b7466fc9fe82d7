/**
 * redact(): every form of connection string loses its password, of any length, and the text
 * around it stays as it was. Pure: no database.
 */
import { afterEach, describe, expect, it, vi } from 'vitest'
import { redact, redactUrl, registerSecret, registerUrlSecret } from '../../lib/redact.js'

/** `input` must come out as `expected`, and none of `secrets` (each really in `input`) may remain. */
function check(input: string, expected: string, secrets: string[]): void {
  const out = redact(input)
  for (const secret of secrets) {
    expect(input, 'the test itself: the secret is in the input').toContain(secret)
    expect(out, `${JSON.stringify(secret)} is still in the output`).not.toContain(secret)
  }
  expect(out).toBe(expected)
}

describe('URL passwords (scheme://user:password@host)', () => {
  it('hides a plain password and keeps user, host, port, database and query', () => {
    check(
      'connect to postgres://alice:hunter22@db.example:5432/app?sslmode=require failed',
      'connect to postgres://alice:***@db.example:5432/app?sslmode=require failed',
      ['hunter22'],
    )
  })

  it('hides a password with unencoded @, : and / up to the last @ before the host', () => {
    check('postgres://u:p@ss@host/db', 'postgres://u:***@host/db', ['p@ss'])
    check('postgres://u:pa:ss@host/db', 'postgres://u:***@host/db', ['pa:ss'])
    check('postgres://u:pa/ss@host/db', 'postgres://u:***@host/db', ['pa/ss'])
    check(
      'DATABASE_URL=postgresql://role:Dr1ll:S3cret@/%?#&-9f8e@127.0.0.1:5432/app',
      'DATABASE_URL=postgresql://role:***@127.0.0.1:5432/app',
      ['Dr1ll', 'S3cret', '-9f8e'],
    )
  })

  it('hides a password with @, : and / percent-encoded', () => {
    const encoded = encodeURIComponent('p@ss:wo/rd')
    expect(encoded).toBe('p%40ss%3Awo%2Frd')
    check(`postgres://u:${encoded}@host:5432/db`, 'postgres://u:***@host:5432/db', [encoded, 'ss%3Awo'])
  })

  it('hides passwords of 1, 2 and 3 characters', () => {
    check('postgres://me:Q@db.example/app', 'postgres://me:***@db.example/app', ['Q'])
    check('postgres://me:Qz@db.example/app', 'postgres://me:***@db.example/app', ['Qz'])
    check('postgres://me:Qzk@db.example/app', 'postgres://me:***@db.example/app', ['Qzk'])
  })

  it('hides the password of each URL in a comma-separated list, keeping both hosts', () => {
    check('urls postgres://a:Kx1@h1/d,postgres://b:Ky2@h2/d end', 'urls postgres://a:***@h1/d,postgres://b:***@h2/d end', ['Kx1', 'Ky2'])
  })

  it('keeps the quotes and neighbours of a URL in JSON or in quotes', () => {
    check('{"url":"postgres://u:Zq9@h/db","owner":"ops@example.com"}', '{"url":"postgres://u:***@h/db","owner":"ops@example.com"}', ['Zq9'])
    check("could not connect to 'postgres://u:it's@h/db'.", "could not connect to 'postgres://u:***@h/db'.", ["it's"])
  })

  it('leaves URLs without a password alone', () => {
    for (const url of ['postgres://u@h/db', 'postgres://h:5432/db', 'postgresql:///db?host=/tmp', 'https://example.com/a?b=c']) {
      expect(redact(`see ${url} now`)).toBe(`see ${url} now`)
    }
  })

  it('redactUrl() hides the password too', () => {
    expect(redactUrl('postgres://u:p@ss@host/db')).toBe('postgres://u:***@host/db')
  })
})

describe('password query parameters', () => {
  it('hides ?password= and &password=, keeping the other parameters', () => {
    check('postgres://u@h/db?password=s3cretA&sslmode=require', 'postgres://u@h/db?password=***&sslmode=require', ['s3cretA'])
    check('postgres://u@h/db?sslmode=require&password=s3cretB', 'postgres://u@h/db?sslmode=require&password=***', ['s3cretB'])
  })

  it('hides sslpassword', () => {
    check(
      'postgres://u@h/db?sslkey=/k.pem&sslpassword=k3yPass&connect_timeout=5',
      'postgres://u@h/db?sslkey=/k.pem&sslpassword=***&connect_timeout=5',
      ['k3yPass'],
    )
  })

  it('hides a 1-character parameter value and an encoded one', () => {
    check('postgres://u@h/db?password=Q&x=1', 'postgres://u@h/db?password=***&x=1', ['Q'])
    check('postgres://u@h/db?password=a%40b%26c', 'postgres://u@h/db?password=***', ['a%40b%26c'])
  })

  it('hides a password parameter after a second question mark', () => {
    check('postgres://u@h/db?application_name=x?password=Qm3&y=1', 'postgres://u@h/db?application_name=x?password=***&y=1', ['Qm3'])
  })

  it('hides both the URL password and a password parameter', () => {
    check('postgres://u:Ux7@h/db?password=Px8', 'postgres://u:***@h/db?password=***', ['Ux7', 'Px8'])
  })

  it('hides a password parameter of a string that is not quite a URL', () => {
    check('postgres//u@h/db?password=Wv5&sslmode=require', 'postgres//u@h/db?password=***&sslmode=require', ['Wv5'])
  })
})

describe('keyword/value connection strings', () => {
  it('hides an unquoted password, keeping the other settings', () => {
    check('host=h user=u password=s3cretC dbname=d', 'host=h user=u password=*** dbname=d', ['s3cretC'])
  })

  it('hides a quoted password with a space and an escaped quote', () => {
    check("host=h password='s3 cr\\'et' dbname=d", 'host=h password=*** dbname=d', ['s3 cr', "et'"])
  })

  it('hides a password with blanks around the equal sign, and a 1-character one', () => {
    check('host=h password = Jj7 port=5432', 'host=h password = *** port=5432', ['Jj7'])
    check('host=h password=Q port=5432', 'host=h password=*** port=5432', ['Q'])
  })

  it('hides sslpassword and environment-style settings', () => {
    check('sslcert=c.pem sslpassword=Ss1 dbname=d', 'sslcert=c.pem sslpassword=*** dbname=d', ['Ss1'])
    check('export PGPASSWORD=Pg2 PGUSER=u', 'export PGPASSWORD=*** PGUSER=u', ['Pg2'])
    check('PGPASSWORD="Pg 3" psql', 'PGPASSWORD=*** psql', ['Pg 3'])
  })

  it('keeps a keyword/value string in JSON valid', () => {
    check('{"conninfo":"host=h password=Jx4"}', '{"conninfo":"host=h password=***"}', ['Jx4'])
  })
})

describe('ordinary text', () => {
  it('stays readable when it only mentions the word password', () => {
    for (const text of [
      'password authentication failed for user "bob"',
      'fe_sendauth: no password supplied',
      'Password: (hidden)',
      'the password option is empty: password=',
      'passwords are stored in ~/.pgpass',
    ]) {
      expect(redact(text)).toBe(text)
    }
  })

  it('is left unchanged', () => {
    for (const text of [
      'Migrated 3 files in 1.2s',
      'relation "public.users" does not exist',
      'time: 12:30:45, user@host, a:b@c',
      'line one\nline two: key=value other=thing',
      '',
    ]) {
      expect(redact(text)).toBe(text)
    }
  })
})

describe('registered secrets', () => {
  it('registerUrlSecret registers a URL password with an unencoded @, decoded and encoded', () => {
    registerUrlSecret('postgres://u:Reg@At1@h/db')
    check('server said Reg@At1 and Reg%40At1', 'server said *** and ***', ['Reg@At1', 'Reg%40At1'])
  })

  it('registerUrlSecret registers a ?password= parameter, decoded', () => {
    registerUrlSecret('postgres://u@h/db?sslmode=require&password=Qry%3APass')
    check('echoed Qry:Pass and Qry%3APass here', 'echoed *** and *** here', ['Qry:Pass', 'Qry%3APass'])
  })

  it('registerUrlSecret registers sslpassword and keyword/value passwords, unescaped', () => {
    registerUrlSecret('postgres://u@h/db?sslpassword=SslKeyPw')
    registerUrlSecret("host=h password='Kw\\'Quoted' dbname=d")
    registerUrlSecret('host=h password=KwPlain9 dbname=d')
    check("got SslKeyPw, Kw'Quoted, KwPlain9.", 'got ***, ***, ***.', ['SslKeyPw', "Kw'Quoted", 'KwPlain9'])
  })

  it('short passwords are not registered (they would mangle text) but still hidden in place', () => {
    registerUrlSecret('postgres://u:ab@h/db')
    registerSecret('xyz')
    check('tab xyz postgres://u:ab@h/db', 'tab xyz postgres://u:***@h/db', [':ab@'])
  })
})

describe('secrets from the environment', () => {
  afterEach(() => {
    vi.unstubAllEnvs()
    vi.resetModules()
  })

  it('PGPASSWORD and the password parameter of DATABASE_URL are removed wherever they appear', async () => {
    vi.stubEnv('PGPASSWORD', 'EnvPgPass42')
    vi.stubEnv('DATABASE_URL', 'postgres://u@h/db?password=EnvUrlPass7')
    vi.resetModules()
    const fresh = await import('../../lib/redact.js')
    expect(fresh.redact('a EnvPgPass42 b EnvUrlPass7 c')).toBe('a *** b *** c')
  })
})
