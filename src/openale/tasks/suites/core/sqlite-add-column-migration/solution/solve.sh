#!/bin/bash
set -euo pipefail
cat > /app/migrate.sh <<'SH'
#!/bin/bash
set -euo pipefail
db=${1:?usage: migrate.sh DB}
[ -f "$db" ] || { echo "no such database: $db" >&2; exit 2; }
version=$(sqlite3 "$db" 'PRAGMA user_version;')
case "$version" in
  2) echo "already at version 2"; exit 0 ;;
  1) ;;
  *) echo "unexpected schema version $version" >&2; exit 1 ;;
esac
domain() {  # SQL expression for the domain of the email column of row $1
  echo "CASE WHEN instr(trim($1.email, ' '), '@') > 0
              AND length(substr(trim($1.email, ' '), instr(trim($1.email, ' '), '@') + 1)) > 0
         THEN lower(substr(trim($1.email, ' '), instr(trim($1.email, ' '), '@') + 1)) END"
}
sqlite3 -bail "$db" <<SQL
BEGIN IMMEDIATE;
ALTER TABLE users ADD COLUMN email_domain TEXT;
UPDATE users SET email_domain = $(domain users);
CREATE INDEX idx_users_email_domain ON users(email_domain);
CREATE TRIGGER users_email_domain_ins AFTER INSERT ON users BEGIN
  UPDATE users SET email_domain = $(domain NEW) WHERE id = NEW.id;
END;
CREATE TRIGGER users_email_domain_upd AFTER UPDATE OF email, email_domain ON users BEGIN
  UPDATE users SET email_domain = $(domain NEW) WHERE id = NEW.id
    AND email_domain IS NOT $(domain NEW);
END;
PRAGMA user_version = 2;
COMMIT;
SQL
echo "migrated $db to version 2"
SH
chmod +x /app/migrate.sh
/app/migrate.sh /app/app.db
