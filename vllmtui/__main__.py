from vllmtui.entry import main

raise SystemExit(main())
