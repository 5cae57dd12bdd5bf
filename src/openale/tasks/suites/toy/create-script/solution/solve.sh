#!/bin/bash
set -euo pipefail
printf '#!/bin/bash\necho hi\n' > /app/hi.sh
chmod +x /app/hi.sh
