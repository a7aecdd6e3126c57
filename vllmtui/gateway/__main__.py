from vllmtui.gateway.main import main

raise SystemExit(main())
