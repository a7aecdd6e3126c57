from vllmtui.cli import main

raise SystemExit(main())
