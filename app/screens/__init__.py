"""Public screens (党群亮服务可视屏): their registration and their call button."""
