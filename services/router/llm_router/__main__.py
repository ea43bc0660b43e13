from llm_router.cli import main

raise SystemExit(main())
