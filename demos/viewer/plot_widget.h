// A minimal live line plot for plugin docks (viewer_add_plot): one curve,
// redrawn whenever a plugin hands it new samples. Its title (set_text) is
// drawn in its top-left corner.
#pragma once

#include <QVector>
#include <QWidget>

class PlotWidget : public QWidget {
public:
    explicit PlotWidget(const QString &title);
    void set_curve(const float *y, int n);  // copied
    const QVector<float> &curve() const { return y_; }
    long updates() const { return updates_; }  // set_curve calls so far
    QSize sizeHint() const override { return QSize(240, 90); }

protected:
    void paintEvent(QPaintEvent *) override;

private:
    QVector<float> y_;
    float lo_ = -1, hi_ = 1;  // the y range shown: grows to fit, never shrinks
    long updates_ = 0;
};
